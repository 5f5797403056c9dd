"""reward_vlm stays on its side of the package boundaries."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_no_ros_hardware_or_eager_transformers_imports(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "import reward_vlm\n"
        "clf = reward_vlm.ConvSuccessClassifier([('a', 'put the cube in the bowl')], reward_vlm.ConvClassifierConfig(image_size=16))\n"
        "clf.predict(np.zeros((1, 16, 16, 3), np.uint8), 0)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('hardware', 'rclpy', 'cyclonedds', 'zarr', 'robot_stack', 'transformers'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_no_pickle_paths_in_source():
    src = "\n".join(p.read_text() for p in (REPO / "reward_vlm").rglob("*.py"))
    assert "import pickle" not in src and "allow_pickle=True" not in src
    assert "torch.load(" not in src
