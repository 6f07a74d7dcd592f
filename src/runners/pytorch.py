"""Runs a PyTorch model: mmdnn's generated code (`.py`, class KitModel) with its state dict
(`.pth`/`.pt` beside it, or the weights given), a state dict with its `.py` beside it, a
TorchScript file, a torch.export `.pt2`, or a pickled module with its `.py` beside it (loading a
pickle runs it: verify only files you made). With layers, each submodule's output is keyed by
its attribute path (`name`, `name:i` for the i-th of a tuple)."""
import importlib.util
import inspect
import os
import sys
import zipfile

import torch

from common import main, port


def _import(code):
    name = os.path.splitext(os.path.basename(code))[0]
    spec = importlib.util.spec_from_file_location(name, code)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _beside(path, exts):
    stem = os.path.splitext(path)[0]
    return next((stem + e for e in exts if os.path.isfile(stem + e)), None)


def _is_torchscript(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def _from_code(code, weights):
    if weights is None:
        sys.exit(f"{code}: no state dict found beside it ({os.path.splitext(code)[0]}.pth or .pt); "
                 "pass its weights (--reference-weights / --candidate-weights)")
    module = _import(code)
    model = module.KitModel()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        # A pickled whole module (mmdnn --format pickle); its class is now importable.
        model = torch.load(weights, map_location="cpu", weights_only=False)
    else:
        model.load_state_dict(state)
    return model


def load(model, weights):
    kind = "module"
    if model.endswith(".pt2"):
        m, kind = torch.export.load(model).module(), "export"
    elif model.endswith(".py"):
        m = _from_code(model, weights or _beside(model, (".pth", ".pt", ".bin", ".pkl")))
    elif _is_torchscript(model):
        m, kind = torch.jit.load(model, map_location="cpu"), "script"
    else:
        code = _beside(model, (".py",))
        if code is None:
            sys.exit(f"{model} is no TorchScript file: a state dict (or pickled module) needs the "
                     f"code that defines its module; put {os.path.splitext(model)[0]}.py beside it, "
                     "or pass the .py as the model and this file as its weights")
        m = _from_code(code, model)
    if kind != "export":
        m.eval()
    what = {"module": "generated code + state dict", "script": "TorchScript", "export": "torch.export"}[kind]
    return {"model": m, "kind": kind, "runtime": f"torch {torch.__version__} ({what})"}


def describe(h):
    m = h["model"]
    examples = getattr(m, "example_inputs", None)
    if h["kind"] == "module" and examples is not None:
        args = list(inspect.signature(m.forward).parameters)
        inputs = [port(a, shape, str(dtype).replace("torch.", "")) for a, (_, shape, dtype) in zip(args, examples)]
        return {"inputs": inputs, "outputs": []}
    return None


def run(h, inputs, layers):
    m = h["model"]
    args = [torch.from_numpy(v) for _, v in inputs]
    recorded, hooks = [], []
    if layers and isinstance(m, torch.nn.Module) and h["kind"] == "module":
        def hook(name):
            def record(_module, _args, out):
                outs = out if isinstance(out, (tuple, list)) else [out]
                for i, o in enumerate(outs):
                    if isinstance(o, torch.Tensor):
                        recorded.append(([name if i == 0 else f"{name}:{i}"], o.detach().numpy().copy()))
            return record
        hooks = [mod.register_forward_hook(hook(name)) for name, mod in m.named_modules() if name]
    with torch.no_grad():
        outs = m(*args)
    for hk in hooks:
        hk.remove()
    if isinstance(outs, torch.Tensor):
        outs = [outs]
    return [(str(i), o.detach().numpy()) for i, o in enumerate(outs)], recorded


if __name__ == "__main__":
    main(load, describe, run)
