"""Keras frontend, hostile HDF5 files: weights kept outside the given file (HDF5 external storage,
external links to another file) are refused, in a Keras 2 `.h5` and inside a Keras 3 `.keras`
archive (its model.weights.h5 stored, read in place, or deflated, extracted first). `convert`
exits 1, names the dataset or group and the file, and writes nothing.

Each hostile file is built fresh (tests/fixtures/keras/make_hdf5_fixtures.py) and read first with
h5py, the HDF5 C library, run where the relative external names resolve: it does return the
secret through every file, so each refusal is mmdnn's, not an accident of a broken file."""

import json

import pytest

BUILD = """
import json, sys, zipfile
from pathlib import Path
import h5py, numpy as np
sys.path.insert(0, {fixtures!r})
import make_hdf5_fixtures as m

out = Path({out!r})
fixtures = Path({fixtures!r})
m.write_all(fixtures / "k2_conv" / "model.h5", out)

# Keras 3: the first variable of model.weights.h5 made external, re-zipped stored and deflated.
def keras3(name, how, compression):
    src = zipfile.ZipFile(fixtures / "k3_mixed" / "model.keras")
    weights = out / (name + ".weights.h5")
    weights.write_bytes(src.read("model.weights.h5"))
    with h5py.File(weights, "r+") as f:
        found = []
        f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and n.endswith("vars/0") else None)
        var = found[0]
        shape = f[var].shape
        del f[var]
        if how == "link":
            f[var] = h5py.ExternalLink("secret.h5", "/kernel")
        else:
            f.create_dataset(var, shape=m.SECRET.shape, dtype="float32",
                             external=[("secret.bin", 0, m.SECRET.nbytes)])
    with zipfile.ZipFile(out / (name + ".keras"), "w") as z:
        for item in src.infolist():
            data = weights.read_bytes() if item.filename == "model.weights.h5" else src.read(item)
            z.writestr(item.filename, data, compress_type=compression)
    weights.unlink()
    return var

k3 = {{
    "k3_link_stored": keras3("k3_link_stored", "link", zipfile.ZIP_STORED),
    "k3_storage_deflated": keras3("k3_storage_deflated", "storage", zipfile.ZIP_DEFLATED),
}}

# HDF5 itself reads the secret through each file.
def through(path, dataset):
    with h5py.File(path, "r") as f:
        return np.asarray(f[dataset][()], dtype="float32").ravel()

for h5, ds in [("external_storage.h5", m.KERNEL), ("external_link.h5", m.KERNEL),
               ("external_group.h5", "model_weights/conv/kernel:0")]:
    assert np.array_equal(through(out / h5, ds), m.SECRET.ravel()), h5
for name, var in k3.items():
    z = zipfile.ZipFile(out / (name + ".keras"))
    (out / "probe.h5").write_bytes(z.read("model.weights.h5"))
    assert np.array_equal(through(out / "probe.h5", var), m.SECRET.ravel()), name
    (out / "probe.h5").unlink()
(out / "k3_vars.json").write_text(json.dumps(k3))
"""

# File, and what the error must name besides the file: the dataset or group and the kind.
CASES = {
    "external_storage.h5": ["'/model_weights/probs/probs/kernel:0'", "external file(s) 'secret.bin'"],
    "external_link.h5": ["'/model_weights/probs/probs/kernel:0'", "external link to file 'secret.h5'"],
    "external_group.h5": ["group '/model_weights/conv'", "external link to file 'secret.h5'"],
    "k3_link_stored.keras": ["external link to file 'secret.h5'"],
    "k3_storage_deflated.keras": ["external file(s) 'secret.bin'"],
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, repo_root, run_in_subprocess):
    out = tmp_path_factory.mktemp("hostile")
    fixtures = str(repo_root / "tests" / "fixtures" / "keras")
    run_in_subprocess(BUILD.format(fixtures=fixtures, out=str(out)), cwd=out)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_file_is_refused_and_nothing_written(name, hostile, run_mmdnn, tmp_path):
    before = sorted(p.name for p in hostile.iterdir())
    secret = (hostile / "secret.bin").read_bytes()
    dest = tmp_path / "out"
    dest.mkdir()
    proc = run_mmdnn("convert", "-sf", "keras", "-iw", hostile / name, "-df", "onnx",
                     "-om", dest / "model.onnx", cwd=hostile)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    expected = CASES[name]
    if name.startswith("k3_"):
        var = json.loads((hostile / "k3_vars.json").read_text())[name.removesuffix(".keras")]
        # A link is met listing its group's variables; external storage, opening the dataset.
        where = var.rsplit("/", 1)[0] if "link" in name else var
        # The weights file is named as the archive's member, also when extracted to read it.
        expected = [f"{name}/model.weights.h5: dataset '/{where}'" if where == var
                    else f"{name}/model.weights.h5: members of group '/{where}'", *expected]
    for part in [name, *expected]:
        assert part in err, f"{part!r} not in:\n{err}"
    assert not list(dest.iterdir()), "a refused conversion wrote files"
    assert sorted(p.name for p in hostile.iterdir()) == before, "files appeared next to the model"
    assert secret not in proc.stdout.encode() + proc.stderr.encode()
