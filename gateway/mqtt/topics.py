"""MQTT topic names: where the gateway, each device node and each measure publish.

Layout under `base_topic` (default ``edge-gateway``)::

    <base>/status                       online | offline (retained; the last will says offline)
    <base>/gateway/<metric>             upload_queue, dead_letters, upstream (retained)
    <base>/<device>/<metric>            battery, rssi, last_seen of one BLE device (retained)
    <base>/<node>/<measure>             latest value of one measure, JSON (retained)
    <base>/<node>/reading               every reading once, in store order, JSON (not retained)
    <discovery_prefix>/<component>/<node>/<object_id>/config   Home Assistant discovery

A node is one Home Assistant device: a BLE device, or one person's share of it (a device user
slot or a bound person). Topic levels are slugs (``[a-z0-9_-]``) so no wildcard or separator
from a device name or a label ends up in a topic. Source: Home Assistant, MQTT discovery
("Discovery topic": ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``).
"""

import hashlib
import re
from dataclasses import dataclass

_NOT_SLUG = re.compile(r"[^a-z0-9_-]+")

STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"


def slug(text: str) -> str:
    """A topic-safe, lower-case form of `text` (``"Mum's cuff"`` → ``"mum_s_cuff"``)."""
    return _NOT_SLUG.sub("_", text.strip().lower()).strip("_") or "_"


def device_slug(address: str) -> str:
    """A BLE address as a topic level: ``"C0:FF:EE:00:00:01"`` → ``"c0ffee000001"``."""
    return slug(address.replace(":", ""))


@dataclass(frozen=True, slots=True)
class Node:
    """One Home Assistant device: a BLE device, or one person's share of it.

    Attributes:
        address: The BLE device address.
        person: The person level of the node id (slug), or None for the whole device.
        label: How the person is shown (a name, ``"user 2"``), or None.
    """

    address: str
    person: str | None = None
    label: str | None = None

    @property
    def node_id(self) -> str:
        """The topic level and discovery node id: ``c0ffee000001`` or ``c0ffee000001_anna``."""
        base = device_slug(self.address)
        return base if self.person is None else f"{base}_{self.person}"


def person_node(
    address: str,
    *,
    user_id: str | None,
    user_name: str | None,
    user_index: int | None,
    person_topic: str = "label",
) -> Node:
    """The node a reading belongs to.

    A bound person is named by the binding's label (the user's name), or by the Junction user
    id only when `person_topic` is ``"user_id"``; a person with no name gets a short hash of
    the id, so the id itself never appears. Without a person the device's user slot names the
    node; without either, the node is the device itself.
    """
    if user_id is not None:
        if person_topic == "user_id":
            return Node(address, slug(user_id), user_id)
        if user_name:
            return Node(address, slug(user_name), user_name)
        token = hashlib.sha256(user_id.encode()).hexdigest()[:8]
        return Node(address, f"person_{token}", f"person {token}")
    if user_index is not None:
        return Node(address, f"user{user_index}", f"user {user_index}")
    return Node(address)


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic the sink uses, from the configured prefixes."""

    base: str = "edge-gateway"
    discovery_prefix: str = "homeassistant"

    @property
    def status(self) -> str:
        """The gateway's availability topic (also the last will)."""
        return f"{self.base}/status"

    def gateway(self, metric: str) -> str:
        """A gateway metric's state topic."""
        return f"{self.base}/gateway/{metric}"

    def device(self, address: str, metric: str) -> str:
        """A BLE device metric's state topic (shared by every node of the device)."""
        return f"{self.base}/{device_slug(address)}/{metric}"

    def measure(self, node: Node, measure: str) -> str:
        """A measure's latest-value state topic."""
        return f"{self.base}/{node.node_id}/{measure}"

    def readings(self, node: Node) -> str:
        """The node's every-reading event topic."""
        return f"{self.base}/{node.node_id}/reading"

    def discovery(self, component: str, node_id: str, object_id: str) -> str:
        """A Home Assistant discovery config topic."""
        return f"{self.discovery_prefix}/{component}/{node_id}/{object_id}/config"
