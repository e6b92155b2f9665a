"""The experiment file: a TOML document validated into an ``Experiment`` before any work starts.

Every table refuses keys it does not know (``extra="forbid"``) and every error is turned into one
line that names the file, the path of the bad value in it (``attacks[1].iterations``) and what is
accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgekit.errors import EdgekitError
from edgekit.links import LinkProfile, shipped_links

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainSettings(_Strict):
    """How the target model is trained (or which cached checkpoint is reused)."""

    epochs: Optional[PositiveInt] = None
    batch_size: Optional[PositiveInt] = None
    lr: Optional[PositiveFloat] = None
    limit: Optional[PositiveInt] = Field(None, description="train on the first N training images only")

    def recipe_overrides(self) -> dict:
        return self.model_dump(exclude={"limit"}, exclude_none=True)


class CollectorSettings(_Strict):
    """Where the feature collector listens, and the address boards connect to."""

    listen: str = Field("127.0.0.1", description="interface to listen on; 0.0.0.0 for boards on the network")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(0, description="0: any free port")
    address: Optional[str] = Field(None, description="this machine's address as the boards reach it "
                                                     "(required with devices other than local)")

    def host_for(self, is_local: bool) -> str:
        if is_local:
            return "127.0.0.1" if self.listen in ("0.0.0.0", "127.0.0.1") else self.listen
        return self.address


class OnlineSettings(_Strict):
    """The online phase of every agent run: the link to the cloud measured, then one image at a time
    through device part, link and cloud part, each answer awaited (``docs/interfaces.md``)."""

    enabled: bool = Field(True, description="false: the agents run the timed loop only (online columns NaN)")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(
        0, description="port of the cloud's online inference service, on the collector's listen address; 0: any free")
    warmup: Optional[Annotated[int, Field(ge=0)]] = Field(None, description="unrecorded online inferences "
                                                                            "first; default: the experiment's warmup")
    repetitions: Optional[PositiveInt] = Field(None, description="online passes over the images; default: the "
                                                                 "experiment's repetitions")
    rtt_samples: PositiveInt = Field(30, description="PING/PONG round trips timed")
    transfer_samples: PositiveInt = Field(30, description="feature frames timed one at a time to their ACK")
    goodput_seconds: PositiveFloat = Field(1.0, description="seconds of streaming feature frames to measure "
                                                            "the upload goodput")

    def spec(self, port: int) -> dict:
        """The run spec's ``online`` (its host is the spec's cloud host: the collector's address)."""
        settings = self.model_dump(exclude={"enabled", "port"}, exclude_none=True)
        return {**settings, "port": port}


# --- attacks -------------------------------------------------------------------------------------

class _Attack(_Strict):
    label: Optional[str] = Field(None, description="name of the attack in the results; default from kind")

    def settings(self) -> dict:
        """The keyword arguments for ``cloud_side.attacks.make_attack`` (unset values left to its defaults)."""
        return self.model_dump(exclude={"kind", "label"}, exclude_none=True)

    @property
    def name(self) -> str:
        return self.label or self.default_label()

    def default_label(self) -> str:
        return self.kind


class WhiteboxAttack(_Attack):
    """rMLE against the device part's weights."""

    kind: Literal["whitebox"]
    preset: Optional[str] = None
    iterations: Optional[PositiveInt] = None
    lr: Optional[PositiveFloat] = None
    tv_weight: Optional[NonNegativeFloat] = None
    l2_weight: Optional[NonNegativeFloat] = None


class BlackboxAttack(_Attack):
    """An inverse network trained on queries to the device part."""

    kind: Literal["blackbox"]
    query_source: Literal["train", "same-distribution", "noise"] = "same-distribution"
    queries: Optional[PositiveInt] = Field(None, description="how many query images (default: all / the preset's)")
    via: Literal["local", "agent"] = Field(
        "local", description="who answers the queries with the configuration's exported device part: "
                             "local: its runtime on this machine; agent: the device agent on the device")
    epochs: Optional[PositiveInt] = None
    lr: Optional[PositiveFloat] = None
    batch_size: Optional[PositiveInt] = None

    def settings(self) -> dict:
        settings = self.model_dump(exclude={"kind", "label", "queries", "via"}, exclude_none=True)
        if self.query_source == "noise" and self.queries:
            settings["noise_queries"] = self.queries
        return settings

    def default_label(self) -> str:
        return f"blackbox-{self.query_source}"


class QueryfreeAttack(_Attack):
    """A shadow device part trained through the frozen cloud part, then inverted."""

    kind: Literal["queryfree"]
    shadow: Literal["same", "different"] = "same"
    epochs: Optional[PositiveInt] = None
    iterations: Optional[PositiveInt] = None
    lr: Optional[PositiveFloat] = None
    tv_weight: Optional[NonNegativeFloat] = None
    aux_images: Optional[PositiveInt] = Field(None, description="how many labelled images train the shadow")

    def settings(self) -> dict:
        settings = self.model_dump(exclude={"kind", "label", "shadow", "aux_images", "epochs"}, exclude_none=True)
        if self.epochs:
            settings["shadow_epochs"] = self.epochs
        return settings

    def default_label(self) -> str:
        return f"queryfree-{self.shadow}"


Attack = Annotated[Union[WhiteboxAttack, BlackboxAttack, QueryfreeAttack], Field(discriminator="kind")]


# --- defences ------------------------------------------------------------------------------------

class _Defence(_Strict):
    at: Literal["device", "simulated"] = Field(
        "device", description="device: the agent applies it; simulated: applied to the undefended features")

    def spec(self, seed: int) -> dict:
        """The agent's / ``device_agents.defences`` form of this defence."""
        return {**self.model_dump(exclude={"at"}), "seed": seed}

    @property
    def label(self) -> str:
        params = self.model_dump(exclude={"kind", "at"})
        return "-".join([self.kind, *(f"{value:g}" for value in params.values())])

    @property
    def applied(self) -> str:
        return self.at

    @property
    def tag(self) -> str:
        """Label and where it is applied: ``dropout-0.5@simulated``; ``none``."""
        return self.label if self.applied == "none" else f"{self.label}@{self.applied}"


class NoDefence(_Defence):
    kind: Literal["none"]

    def spec(self, seed: int) -> dict:
        return {"kind": "none"}

    @property
    def applied(self) -> str:
        return "none"


class GaussianDefence(_Defence):
    kind: Literal["gaussian"]
    sigma: PositiveFloat


class LaplaceDefence(_Defence):
    kind: Literal["laplace"]
    b: PositiveFloat


class DropoutDefence(_Defence):
    kind: Literal["dropout"]
    rate: Annotated[float, Field(gt=0, lt=1)]


Defence = Annotated[Union[NoDefence, GaussianDefence, LaplaceDefence, DropoutDefence], Field(discriminator="kind")]
NO_DEFENCE = NoDefence(kind="none")


# --- the experiment ------------------------------------------------------------------------------

class Experiment(_Strict):
    """A sweep: every (device, split, format, precision, defence) is a configuration, attacked by every attack."""

    name: str
    model: str
    dataset: str
    splits: Annotated[list[str], Field(min_length=1)]
    formats: Annotated[list[Literal["onnx", "tflite"]], Field(min_length=1)] = ["onnx"]
    precisions: Annotated[list[Literal["fp32", "int8"]], Field(min_length=1)] = ["fp32"]
    devices: Annotated[list[str], Field(min_length=1)] = ["local"]
    inventory: Optional[str] = Field(None, description="device inventory TOML; default: edgekit.devices' own")
    attacks: list[Attack] = []
    defences: Annotated[list[Defence], Field(min_length=1)] = [NO_DEFENCE]
    images: PositiveInt = Field(100, description="private test images each configuration runs (accuracy, latency)")
    attacked_images: PositiveInt = Field(10, description="how many of those images the attacks reconstruct")
    warmup: Annotated[int, Field(ge=0)] = 10
    repetitions: PositiveInt = 1
    threads: PositiveInt = Field(1, description="runtime threads of the device part on the device")
    cloud_threads: PositiveInt = Field(1, description="PyTorch threads on the workstation (training, attacks); "
                                                      "1 is fastest for small models on a shared CPU")
    seed: Annotated[int, Field(ge=0)] = 0
    output: str = Field("results", description="results root; a run goes to OUTPUT/NAME/RUN-ID")
    train: TrainSettings = TrainSettings()
    collector: CollectorSettings = CollectorSettings()
    online: OnlineSettings = OnlineSettings()
    links: list[LinkProfile] = Field(
        default_factory=shipped_links,
        description="what-if link profiles for the predicted end-to-end time (edgekit.links); default: "
                    "every shipped profile")

    @property
    def attack_seed(self) -> int:
        """The adversary's seed. Never the training seed: a re-initialised "same" shadow seeded like
        the target would start from the target's own initial weights and leak them."""
        return self.seed + 1

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError("accepted: letters, digits, '_', '.' and '-' (it names the results folder)")
        return name

    @field_validator("splits", "formats", "precisions", "devices")
    @classmethod
    def _unique(cls, values):
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f"{duplicates[0]!r} is listed twice")
        return values

    @model_validator(mode="after")
    def _attacked_within_run(self):
        if self.attacked_images > self.images:
            raise ValueError(f"attacked_images: {self.attacked_images} is more than images ({self.images}); "
                             f"accepted: 1 to {self.images}")
        return self

    @model_validator(mode="after")
    def _unique_labels(self):
        for field, labels in (("attacks", [a.name for a in self.attacks]),
                              ("defences", [d.tag for d in self.defences]),
                              ("links", [link.name for link in self.links])):
            for index, label in enumerate(labels):
                if label in labels[:index]:
                    what = "name" if field == "links" else "label"
                    raise ValueError(f"{field}[{index}]: duplicates {label!r}; give it a distinct {what}")
        return self

    def fingerprint(self) -> str:
        """A hash of everything that decides the results (a resumed run must match it)."""
        resolved = self.model_dump(mode="json", exclude={"output": True, "inventory": True, "cloud_threads": True,
                                                         "collector": True, "online": {"port"},
                                                         "links": True})  # links only feed predictions
        return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:16]


# --- loading -------------------------------------------------------------------------------------

def load_experiment(path) -> Experiment:
    """Read and validate an experiment file; ``EdgekitError`` (one line) on anything wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise EdgekitError(f"experiment file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"{path.name}: not valid TOML: {exc}") from None
    return parse_experiment(data, path.name)


def parse_experiment(data: dict, source: str = "experiment") -> Experiment:
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        raise EdgekitError(f"{source}: {describe_error(exc)}") from None


_TAGGED_LISTS = {"attacks": Attack, "defences": Defence}


def describe_error(exc: ValidationError) -> str:
    """The first validation error as ``path: problem; accepted: ...``."""
    errors = exc.errors()
    error = errors[0]
    loc = _strip_tags(error["loc"])
    where = _format_loc(loc)
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "extra_forbidden":
        message = f"unknown key; accepted: {', '.join(_accepted_keys(loc[:-1], error['loc']))}"
    elif kind == "union_tag_invalid":
        where = f"{where}.kind"
        message = f"{ctx['tag']!r} is not one of {_choices(ctx['expected_tags'])}"
    elif kind == "union_tag_not_found":
        message = f"missing key 'kind'; accepted kinds: {', '.join(_tags(loc))}"
    elif kind == "literal_error":
        message = f"{value!r} is not one of {_choices(ctx['expected'])}"
    elif kind == "missing":
        message = "missing required key"
    else:
        shown = f"{value!r}: " if not isinstance(value, (dict, list)) else ""
        text = error["msg"].removeprefix("Value error, ")
        message = f"{shown}{text[:1].lower()}{text[1:]}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def _choices(pydantic_list: str) -> str:
    """``"'a', 'b' or 'c'"`` -> ``"a, b, c"``."""
    return pydantic_list.replace("'", "").replace(" or ", ", ")


def _strip_tags(loc: tuple) -> tuple:
    """Pydantic puts the union tag in the path (``attacks.1.whitebox.iterations``); drop it."""
    out = []
    for i, part in enumerate(loc):
        if i >= 2 and loc[i - 2] in _TAGGED_LISTS and isinstance(loc[i - 1], int):
            continue
        out.append(part)
    return tuple(out)


def _format_loc(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _tags(loc: tuple) -> list[str]:
    return [cls.model_fields["kind"].annotation.__args__[0] for cls in _union_members(loc[0])]


def _union_members(field: str):
    return _TAGGED_LISTS[field].__origin__.__args__


def _accepted_keys(parent: tuple, raw_loc: tuple) -> list[str]:
    """The keys the table at ``parent`` accepts."""
    model = Experiment
    if parent and parent[0] in _TAGGED_LISTS:
        tag = raw_loc[2]
        model = next(cls for cls in _union_members(parent[0]) if cls.model_fields["kind"].annotation.__args__[0] == tag)
    elif parent and parent[0] == "links":
        model = LinkProfile
    elif parent in (("train",), ("collector",), ("online",)):
        model = {"train": TrainSettings, "collector": CollectorSettings, "online": OnlineSettings}[parent[0]]
    return list(model.model_fields)
