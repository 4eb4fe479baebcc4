"""neg_envs is an environment package: it imports no agent library and leaves others' settings."""

import subprocess
import sys


def python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_neg_envs_needs_neither_torch_nor_stable_baselines3():
    loaded = python(
        "import sys, neg_envs\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'stable_baselines3'}))"
    )
    assert loaded == "[]"


def test_forkserver_preload_keeps_the_modules_others_asked_for():
    preload = python(
        "import multiprocessing\n"
        "multiprocessing.set_forkserver_preload(['__main__', 'json'])\n"
        "import neg_envs\n"
        "from multiprocessing import forkserver\n"
        "print(forkserver._forkserver._preload_modules)"
    )
    assert preload == "['__main__', 'json', 'neg_envs']"
