"""Topic names and the node a reading belongs to (privacy: no Junction id unless asked)."""

from gateway.mqtt.topics import Node, Topics, device_slug, person_node, slug


def test_slugs_keep_wildcards_and_separators_out_of_topics():
    assert slug("Mum's cuff / #2 +") == "mum_s_cuff_2"
    assert slug("///") == "_"
    assert device_slug("C0:FF:EE:00:00:01") == "c0ffee000001"


def test_a_bound_person_is_named_by_label_or_a_hash_never_by_the_user_id():
    named = person_node("AA:BB", user_id="u-123", user_name="Anna B.", user_index=1)
    assert named == Node("AA:BB", "anna_b", "Anna B.")
    nameless = person_node("AA:BB", user_id="u-123", user_name=None, user_index=None)
    assert nameless.person is not None
    assert nameless.person.startswith("person_")
    assert "u-123" not in nameless.node_id
    assert "u-123" not in (nameless.label or "")
    # Stable: the same person is the same Home Assistant device after a restart.
    assert nameless == person_node("AA:BB", user_id="u-123", user_name=None, user_index=None)


def test_slots_and_whole_devices_and_the_opt_in_user_id():
    assert person_node("AA:BB", user_id=None, user_name=None, user_index=2).node_id == "aabb_user2"
    assert person_node("AA:BB", user_id=None, user_name=None, user_index=None).node_id == "aabb"
    by_id = person_node(
        "AA:BB", user_id="u-123", user_name="Anna", user_index=1, person_topic="user_id"
    )
    assert by_id.node_id == "aabb_u-123"


def test_topic_layout():
    topics = Topics("home/edge", "ha")
    node = Node("C0:FF:EE:00:00:02", "anna", "Anna")
    assert topics.status == "home/edge/status"
    assert topics.measure(node, "systolic") == "home/edge/c0ffee000002_anna/systolic"
    assert topics.readings(node) == "home/edge/c0ffee000002_anna/reading"
    assert topics.device(node.address, "battery") == "home/edge/c0ffee000002/battery"
    assert topics.discovery("sensor", node.node_id, "pulse") == (
        "ha/sensor/c0ffee000002_anna/pulse/config"
    )
