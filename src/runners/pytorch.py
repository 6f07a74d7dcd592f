"""Runs a TorchScript (.pt/.pth saved by torch.jit.save) or torch.export (.pt2) model."""
import torch

from common import main


def run(model, inputs):
    args = [torch.from_numpy(v) for _, v in inputs]
    if model.endswith(".pt2"):
        module = torch.export.load(model).module()  # already in inference form; no .eval()
    else:
        module = torch.jit.load(model, map_location="cpu")
        module.eval()
    with torch.no_grad():
        outs = module(*args)
    if isinstance(outs, torch.Tensor):
        outs = [outs]
    return [(str(i), o.detach().numpy()) for i, o in enumerate(outs)]


if __name__ == "__main__":
    main(run)
