"""What the tests of the extra physical parameters share (tests/test_env_extras_*.py): the
tasks by family, pybullet_data's MJCF files, and the extra parameters as documented."""

import os

import numpy as np
import pybullet as pb
import pybullet_data

LOCOMOTION = ["Hopper", "Walker2d", "HalfCheetah"]
PENDULA = ["InvertedPendulum", "InvertedDoublePendulum"]
XML = {"Hopper": "hopper.xml", "Walker2d": "walker2d.xml", "HalfCheetah": "half_cheetah.xml"}
FEET = {"Hopper": {"foot"}, "Walker2d": {"foot", "foot_left"}, "HalfCheetah": {"bfoot", "ffoot"}}
N_JOINTS = {"Hopper": 3, "Walker2d": 6, "HalfCheetah": 6}
PENDULUM_XML = {
    "InvertedPendulum": "inverted_pendulum.xml",
    "InvertedDoublePendulum": "inverted_double_pendulum.xml",
}

# name: (unit, nominal, train, test) — the extra parameters as documented
EXTRAS = {
    "Walker2d": {
        "power": ("", 1.0, (0.75, 1.25), (0.5, 0.75)),
        "torso_mass": ("", 1.0, (0.5, 1.5), (1.5, 2.0)),
        "foot_mass": ("", 1.0, (0.5, 1.5), (1.5, 2.0)),
    },
    "InvertedPendulum": {
        "cart_mass": ("", 1.0, (0.5, 1.5), (1.5, 2.0)),
        "pole_mass": ("", 1.0, (0.5, 1.5), (1.5, 2.0)),
    },
    "CartPole": {"cart_mass": ("kg", 1.0, (0.5, 1.5), (1.5, 2.0))},
}
EXTRAS["Hopper"] = EXTRAS["HalfCheetah"] = EXTRAS["Walker2d"]
EXTRAS["InvertedDoublePendulum"] = EXTRAS["InvertedPendulum"]


def mjcf_links(xml):
    """link name → (mass, inertia diagonal) of pybullet_data's MJCF, loaded untouched."""
    cid = pb.connect(pb.DIRECT)
    try:
        out = {}
        for body in pb.loadMJCF(os.path.join(pybullet_data.getDataPath(), "mjcf", xml), physicsClientId=cid):
            for j in range(pb.getNumJoints(body, physicsClientId=cid)):
                dyn = pb.getDynamicsInfo(body, j, physicsClientId=cid)
                out[pb.getJointInfo(body, j, physicsClientId=cid)[12].decode()] = (dyn[0], np.array(dyn[2]))
        return out
    finally:
        pb.disconnect(cid)
