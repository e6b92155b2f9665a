"""Feature defences, defined once for the device and for the cloud side's simulation of it.

Every defence draws its randomness from a generator seeded by (seed, inference index), so the
cloud side can reproduce exactly the noise or mask the device applied to a given image.
Dropout zeroes features with probability ``rate`` and does not rescale the survivors by
1/(1-rate), as in He, Zhang, Lee (ACSAC 2019).
"""

import numpy as np

KINDS = {"none": (), "gaussian": ("sigma",), "laplace": ("b",), "dropout": ("rate",)}
ACCEPTED = "accepted kinds: none, gaussian(sigma>=0, seed), laplace(b>=0, seed), dropout(0<=rate<1, seed)"


class Defence(object):
    """A validated defence: ``kind``, its one parameter (if any) and the seed."""

    def __init__(self, kind="none", param=None, seed=0):
        if kind not in KINDS:
            raise ValueError("unknown defence kind {!r}; {}".format(kind, ACCEPTED))
        if kind != "none":
            name = KINDS[kind][0]
            if isinstance(param, bool) or not isinstance(param, (int, float)):
                raise ValueError("defence {} needs a number {}, got {!r}; {}".format(kind, name, param, ACCEPTED))
            if kind == "dropout" and not 0.0 <= param < 1.0:
                raise ValueError("dropout rate must be in [0, 1), got {!r}; {}".format(param, ACCEPTED))
            if param < 0:
                raise ValueError("defence {} {} must be >= 0, got {!r}; {}".format(kind, name, param, ACCEPTED))
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError("defence seed must be an integer >= 0, got {!r}; {}".format(seed, ACCEPTED))
        self.kind = kind
        self.param = None if kind == "none" else float(param)
        self.seed = seed

    @classmethod
    def from_dict(cls, data):
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("defence must be an object, got {!r}; {}".format(data, ACCEPTED))
        kind = data.get("kind", "none")
        names = KINDS.get(kind, ())
        unknown = set(data) - {"kind", "seed"} - set(names)
        if kind in KINDS and unknown:
            raise ValueError("defence {} has unknown keys {}; {}".format(kind, sorted(unknown), ACCEPTED))
        param = data.get(names[0]) if names else None
        return cls(kind, param, data.get("seed", 0))

    def to_dict(self):
        if self.kind == "none":
            return {"kind": "none"}
        return {"kind": self.kind, KINDS[self.kind][0]: self.param, "seed": self.seed}

    def __eq__(self, other):
        return isinstance(other, Defence) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return "Defence({!r})".format(self.to_dict())


def apply_defence(defence, features, index):
    """Return the defended copy of ``features`` for inference ``index`` (the input is not changed)."""
    if defence.kind == "none":
        return features
    features = np.asarray(features)
    dtype = features.dtype if np.issubdtype(features.dtype, np.floating) else np.dtype(np.float32)
    rng = np.random.default_rng([defence.seed, int(index)])
    if defence.kind == "gaussian":
        out = features + rng.normal(0.0, defence.param, features.shape)
    elif defence.kind == "laplace":
        out = features + rng.laplace(0.0, defence.param, features.shape)
    else:
        out = features * (rng.random(features.shape) >= defence.param)
    return out.astype(dtype, copy=False)
