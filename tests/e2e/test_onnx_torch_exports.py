"""The ONNX reader on PyTorch's own exports (torch.onnx, TorchScript exporter) of small modules
in torchvision's styles: a ResNet stem and residual block, MobileNetV2/V3 pieces (relu6 as
Clip, hardswish, hardsigmoid squeeze-excitation, Dropout), ShuffleNet's channel shuffle and
chunk, a ViT encoder block, Swin's roll and window partition, a segmentation head
(interpolate to a size and by a scale, ConvTranspose) and DenseNet's concatenations — at
opsets 11, 13, 17 and 18, with a static batch and with a dynamic one (dynamic_axes), whose
shape computations are evaluated on symbolic dims. `mmdnn run` must match the module's own output
within max|Δ| ≤ 1e-4 · max(1, |ref|). torch comes from requirements/torch.txt.
"""

import numpy as np
import pytest

from test_onnx_reader import assert_layout_exact, compare, run_mmdnn_model

EXPORT = """
import warnings
warnings.filterwarnings("ignore")
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0)


class Res(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.conv2 = nn.Conv2d(16, 16, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = F.relu(x + self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class MBv2(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 2, 1)
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, 1, 1, groups=16)
        self.se1 = nn.Conv2d(16, 4, 1)
        self.se2 = nn.Conv2d(4, 16, 1)
        self.pw = nn.Conv2d(16, 8, 1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.hardswish(self.dw(F.relu6(self.bn(self.conv(x)))))
        x = x * F.hardsigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(x, 1)))))
        return self.fc(self.drop(self.pw(x).mean([2, 3])))


class Shuffle(nn.Module):
    def forward(self, x):
        b, c, h, w = x.size()
        x = torch.transpose(x.view(b, 2, c // 2, h, w), 1, 2).contiguous().view(b, -1, h, w)
        left, right = x.chunk(2, dim=1)
        return torch.cat([left, F.silu(right)], 1)


class ViT(nn.Module):
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.patch = nn.Conv2d(3, dim, 4, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 17, dim))
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 64), nn.GELU(), nn.Linear(64, dim))

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        b, n, c = x.shape
        qkv = self.qkv(self.ln1(x)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, c))
        x = x + self.mlp(self.ln2(x))
        return x[:, 0]


class Swin(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(8)

    def forward(self, x):  # [B, H, W, C], windows of 4x4 shifted by 2
        b, h, w, c = x.shape
        x = torch.roll(x, shifts=(-2, -2), dims=(1, 2))
        x = x.view(b, h // 4, 4, w // 4, 4, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, 16, c)
        x = self.ln(x).view(b, h // 4, w // 4, 4, 4, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        return torch.roll(x, shifts=(2, 2), dims=(1, 2))


class Seg(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, 2, 1)
        self.up = nn.ConvTranspose2d(4, 4, 4, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        sized = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        scaled = F.interpolate(y, scale_factor=2, mode="nearest")
        return sized + scaled + self.up(y)


class Dense(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, 1, 1)
        self.conv2 = nn.Conv2d(7, 4, 3, 1, 1)

    def forward(self, x):
        x = torch.cat([x, F.relu(self.conv1(x))], 1)
        x = torch.cat([x, F.relu(self.conv2(x))], 1)
        return F.avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False)


CASES = {{"resnet": (Res, (2, 3, 32, 32)), "mobilenet": (MBv2, (2, 3, 16, 16)),
         "shufflenet": (Shuffle, (2, 8, 6, 6)), "vit": (ViT, (2, 3, 16, 16)),
         "swin": (Swin, (2, 8, 8, 8)), "segmentation": (Seg, (2, 3, 10, 14)),
         "densenet": (Dense, (2, 3, 9, 9))}}
cls, shape = CASES[{name!r}]
m = cls().eval()
for b in m.modules():
    if isinstance(b, nn.BatchNorm2d):
        b.running_mean.uniform_(-0.2, 0.2)
        b.running_var.uniform_(0.5, 1.5)
        b.weight.data.uniform_(0.5, 1.5)
x = torch.randn(*shape)
dynamic = {{"x": {{0: "N"}}, "y": {{0: "N"}}}} if {dynamic!r} else None
torch.onnx.export(m, (x,), {path!r}, dynamo=False, opset_version={opset}, input_names=["x"],
                  output_names=["y"], dynamic_axes=dynamic)
with torch.no_grad():
    np.save({path!r} + ".ref.npy", m(x).numpy())
np.save({path!r} + ".x.npy", x.numpy())
"""

NAMES = ["resnet", "mobilenet", "shufflenet", "vit", "swin", "segmentation", "densenet"]


@pytest.mark.parametrize("opset", [11, 13, 17, 18])
@pytest.mark.parametrize("name", NAMES)
def test_torch_export_static_batch(tmp_path, run_in_subprocess, run_mmdnn, name, opset):
    path = str(tmp_path / f"{name}.onnx")
    run_in_subprocess(EXPORT.format(name=name, dynamic=False, path=path, opset=opset))
    got = run_mmdnn_model(run_mmdnn, path, {"x": path + ".x.npy"}, tmp_path / "out")
    err = compare(got[0], np.load(path + ".ref.npy"), f"{name} opset {opset}")
    print(name, opset, "max |Δ|", err)
    assert_layout_exact(run_mmdnn, path, tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_torch_export_dynamic_batch(tmp_path, run_in_subprocess, run_mmdnn, name):
    path = str(tmp_path / f"{name}.onnx")
    run_in_subprocess(EXPORT.format(name=name, dynamic=True, path=path, opset=17))
    # ViT's cls_token.expand(B, -1, -1) broadcasts a constant to the symbolic batch: an Expand
    # whose target holds the symbol, computed at run time.
    got = run_mmdnn_model(run_mmdnn, path, {"x": path + ".x.npy"}, tmp_path / "out")
    err = compare(got[0], np.load(path + ".ref.npy"), f"{name} dynamic batch")
    print(name, "dynamic batch max |Δ|", err)
