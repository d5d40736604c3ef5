"""cluster/aws.yaml against Ray's own cluster-launcher schema, offline."""

import copy
import os

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def raw():
    with open(os.path.join(ROOT, "cluster", "aws.yaml")) as f:
        return yaml.safe_load(f)


def test_valid_against_rays_schema(raw):
    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)


def test_pinned_head_idle_spot_workers_project_installed(raw):
    config = prepare_config(copy.deepcopy(raw))
    text = yaml.safe_dump(config)
    assert "latest" not in text and "ray:2.60.0" in config["docker"]["image"]
    assert any("--num-cpus=0" in c for c in config["head_start_ray_commands"])
    workers = [n for k, n in config["available_node_types"].items() if k != config["head_node_type"]]
    assert len({w["node_config"]["InstanceType"] for w in workers}) >= 3
    assert all(w["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot" for w in workers)
    assert "." in config["file_mounts"].values()
    assert any("pip install" in c and "requirements.txt" in c for c in config["setup_commands"])
    assert any("-e /home/ray/mrpo_rllib" in c for c in config["setup_commands"])


def test_every_node_requires_the_token_and_the_dashboard_stays_private(raw):
    config = prepare_config(copy.deepcopy(raw))
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c and "RAY_AUTH_TOKEN_PATH=" in c for c in starts), key
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    # the token travels from the laptop's home (generated there, outside the repository)
    (path,) = [k for k, v in config["file_mounts"].items() if str(v).endswith(".ray/auth_token")]
    assert config["file_mounts"][path].startswith("~/") and path in head
    assert not os.path.exists(os.path.join(ROOT, ".ray"))


def test_schema_really_rejects_a_bad_file(raw):
    bad = copy.deepcopy(raw)
    bad["available_node_types"]["head"]["min_workers"] = "many"
    with pytest.raises(Exception, match="many"):
        validate_config(prepare_config(bad))
