"""What-if link profiles: the links a board might have, for predicting end-to-end time per split.

A profile is an upload goodput (application payload, Mbit/s of 1e6 bits), a round-trip time and,
optionally, the radio's power while it transmits. edgekit ships the profiles in ``SHIPPED_LINKS``
(their sources are in docs/links.md); an experiment's ``[[links]]`` names shipped profiles or
defines its own. The predicted figures built from them (``edgekit.predictions``) always say
``predicted`` in their names and never replace a measured one.
"""

from __future__ import annotations

import re
from typing import Annotated, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LINK_FIGURES = ("upload_mbps", "rtt_ms", "radio_w")


class LinkProfile(BaseModel):
    """One link: a shipped profile (by ``name`` alone) or one of the experiment's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="a shipped profile's name, or a name of your own with the figures")
    upload_mbps: Optional[Annotated[float, Field(gt=0)]] = Field(
        None, description="upload goodput (application payload), Mbit/s of 1e6 bits")
    rtt_ms: Optional[Annotated[float, Field(ge=0)]] = Field(None, description="round-trip time, ms")
    radio_w: Optional[Annotated[float, Field(gt=0)]] = Field(
        None, description="radio power while transmitting, W (optional: enables the energy estimate)")
    source: Optional[str] = Field(None, description="where the figures come from (free text, kept in the manifest)")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
            raise ValueError("accepted: lower-case letters, digits, '_', '.' and '-'")
        return name

    @model_validator(mode="before")
    @classmethod
    def _shipped_or_complete(cls, data):
        """``"lte"`` or ``{name = "lte"}`` is the shipped profile; a new name needs its upload rate and RTT."""
        if isinstance(data, str):
            data = {"name": data}
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return data
        name, given = data["name"], [key for key in (*LINK_FIGURES, "source") if key in data]
        if name in SHIPPED_LINKS:
            if given:
                raise ValueError(f"{name!r} is a shipped profile and takes no {given[0]}; "
                                 "give a link with figures of your own a name of its own")
            return SHIPPED_LINKS[name].model_dump()
        missing = [key for key in ("upload_mbps", "rtt_ms") if key not in data]
        if missing:
            raise ValueError(f"{name!r} is not a shipped profile ({', '.join(SHIPPED_LINKS)}); a link of "
                             f"your own needs upload_mbps and rtt_ms (missing: {', '.join(missing)})")
        return data

    def transfer_ms(self, nbytes: float) -> float:
        """Time to push ``nbytes`` of payload through the link at its upload goodput, ms."""
        return transfer_ms(nbytes, self.upload_mbps)


def transfer_ms(nbytes: float, upload_mbps: float) -> float:
    """``nbytes`` at ``upload_mbps`` (1e6 bits per second), in ms."""
    return nbytes * 8 / (upload_mbps * 1e6) * 1e3


def format_rate(mbps: float) -> str:
    return f"{mbps:g} Mbit/s" if mbps >= 1 else f"{mbps * 1e3:g} kbit/s"


def format_ms(ms: float) -> str:
    """A duration for a table: 3 significant figures, in s from one second up."""
    return f"{ms / 1e3:.3g} s" if ms >= 1e3 else f"{ms:.3g} ms"


def _shipped(name, upload_mbps, rtt_ms, radio_w, source) -> LinkProfile:
    return LinkProfile.model_construct(name=name, upload_mbps=upload_mbps, rtt_ms=rtt_ms, radio_w=radio_w,
                                       source=source)


# Figures and their provenance: docs/links.md (keep the two in step).
SHIPPED_LINKS: dict[str, LinkProfile] = {profile.name: profile for profile in (
    _shipped("ethernet", 941.0, 0.5, None,
             "Gigabit Ethernet: TCP goodput computed from 1000BASE-T framing (1448 payload bytes per 1538 "
             "bytes on the wire); RTT typical of one switched LAN"),
    _shipped("wifi", 50.0, 5.0, None,
             "typical Wi-Fi 4/5 (802.11n/ac) upload of a Pi-class board at moderate signal, typical RTT; "
             "no radio power: too device-dependent to ship"),
    _shipped("lte", 6.0, 70.0, 3.9,
             "LTE: median uplink 6 Mbit/s measured by 4GTest (Huang et al., MobiSys 2012); typical RTT; "
             "radio power from Huang et al.'s uplink power model (about 1.29 W + 0.44 W per Mbit/s) at 6 Mbit/s"),
    _shipped("3g", 1.0, 150.0, 1.7,
             "3G (HSPA): typical uplink and RTT; radio power from Huang et al.'s 3G uplink power model "
             "(about 0.82 W + 0.87 W per Mbit/s) at 1 Mbit/s"),
    _shipped("nb-iot", 0.0625, 1000.0, 0.8,
             "NB-IoT (3GPP Rel-13 Cat-NB1): multi-tone uplink peak 62.5 kbit/s, an upper bound (networks "
             "deliver less); typical connected-mode RTT; typical 23 dBm module transmit power"),
)}


def shipped_links() -> list[LinkProfile]:
    return list(SHIPPED_LINKS.values())


def links_from_manifest(manifest: dict) -> list[LinkProfile]:
    """The link profiles a run recorded (its experiment's resolved ``links``); the shipped ones for a
    run recorded before links existed."""
    recorded = (manifest.get("experiment") or {}).get("links")
    if recorded is None:
        return shipped_links()
    return [LinkProfile.model_construct(**{key: entry.get(key) for key in LinkProfile.model_fields})
            for entry in recorded]
