"""Runs a PyTorch model: mmdnn's generated code (`.py`, class KitModel) with its state dict
(`.pth`/`.pt` beside it, or the weights given), a state dict with its `.py` beside it, a
TorchScript file, a torch.export `.pt2`, or a pickled module with its `.py` beside it (loading a
pickle runs it: verify only files you made). With layers, each submodule's output is keyed by
its attribute path (`name`, `name:i` for the i-th of a tuple)."""
import importlib.util
import os
import pickle
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
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # A pickled whole module (mmdnn --format pickle); its class is now importable.
        return torch.load(weights, map_location="cpu", weights_only=False), "pickle"
    model.load_state_dict(state)
    return model, "module"


def load(model, weights):
    kind, code = "module", _beside(model, (".py",))
    ep = None
    if model.endswith(".pt2"):
        ep = torch.export.load(model)
        m, kind = ep.module(), "export"
    elif model.endswith(".py"):
        m, kind = _from_code(model, weights or _beside(model, (".pth", ".pt", ".bin", ".pkl")))
    elif _is_torchscript(model):
        m, kind = torch.jit.load(model, map_location="cpu"), "script"
    else:
        if code is None:
            sys.exit(f"{model} is no TorchScript file: a state dict (or pickled module) needs the "
                     f"code that defines its module; put {os.path.splitext(model)[0]}.py beside it, "
                     "or pass the .py as the model and this file as its weights")
        m, kind = _from_code(code, model)
    if kind != "export":
        m.eval()
    what = {"module": "generated code + state dict", "pickle": "generated code + pickled module",
            "script": "TorchScript", "export": "torch.export"}[kind]
    return {"model": m, "kind": kind, "code": code, "ep": ep, "runtime": f"torch {torch.__version__} ({what})"}


def describe(h):
    """The inputs: a torch.export program's own (its dynamic dims by their symbols), else the
    generated module's `example_inputs` with its `dynamic_dims` (symbolic dims by name; unknown
    dims are written as 1, so a 1 is reported as dynamic), from the model or, for TorchScript
    files, the generated code beside it."""
    if h["ep"] is not None:
        ep = h["ep"]
        user = set(ep.graph_signature.user_inputs)
        inputs = []
        for node in ep.graph.nodes:
            val = node.meta.get("val") if node.op == "placeholder" and node.name in user else None
            if isinstance(val, torch.Tensor):
                dims = [int(d) if isinstance(d, int) else str(d) for d in val.shape]
                inputs.append(port(node.name, dims, str(val.dtype).replace("torch.", "")))
        return {"inputs": inputs, "outputs": []}
    cls = h["model"] if h["kind"] in ("module", "pickle") else None
    if cls is None and h["code"] is not None:
        cls = getattr(_import(h["code"]), "KitModel", None)
    examples = getattr(cls, "example_inputs", None)
    if examples is not None:
        named = {(a, axis): sym for a, axis, sym in getattr(cls, "dynamic_dims", ())}
        inputs = [port(a, [named.get((a, i)) or (None if d == 1 else d) for i, d in enumerate(shape)],
                       str(dtype).replace("torch.", ""))
                  for a, shape, dtype in examples]
        return {"inputs": inputs, "outputs": []}
    return None


def run(h, inputs, layers):
    m = h["model"]
    args = [torch.from_numpy(v) for _, v in inputs]
    recorded, hooks = [], []
    if layers and h["kind"] in ("module", "pickle"):
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
