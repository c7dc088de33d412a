"""The Kamailio edge and its nodes as rendered configuration (stack.kamailio, stack.cluster): no process runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stack.asterisk import render
from stack.cluster import edge_config, node_config, nodes_of, rtp_range
from stack.config import SettingsError, StackConfig, cluster_settings
from stack.instance import scratch_config
from stack.kamailio import dispatcher_rows, parse_dispatcher_list, parse_dispatcher_loads
from stack.kamailio import render as render_edge
from tests.unit.test_stack_asterisk_render import sections

EDGE = ("127.0.0.1", 5070)


def base_config(tmp_path: Path) -> StackConfig:
    cfg = scratch_config("t1", tmp_path)
    cfg.chroot = tmp_path / "chroot"
    return cfg


def rendered_node(tmp_path: Path, index: int = 1) -> dict[str, str]:
    node = node_config(base_config(tmp_path), index, 2, EDGE)
    return {path.name: path.read_text(encoding="utf-8") for path in render(node, tmp_path / f"etc{index}")}


def test_a_single_node_rings_phones_directly_and_matches_them_by_name(tmp_path: Path) -> None:
    cfg = base_config(tmp_path)
    files = {path.name: path.read_text(encoding="utf-8") for path in render(cfg, tmp_path / "etc")}

    assert "endpoint_identifier_order = username,ip" in files["pjsip.conf"]
    assert "Dial(PJSIP/${ARG1},${ARG2}" in files["extensions.conf"]
    assert '"${DEVICE_STATE(PJSIP/${ARG1})}" = "UNAVAILABLE"' in files["extensions.conf"]
    assert "[edge]" not in files["pjsip.conf"] and "CURL(" not in files["extensions.conf"]


def test_a_node_trusts_only_the_edge_and_rings_extensions_through_it(tmp_path: Path) -> None:
    files = rendered_node(tmp_path)
    found = sections(files["pjsip.conf"])
    concrete = [(name, opts) for name, template, opts in found if template != "!"]

    # no phone can register to a node: its only endpoint is the edge, identified by address
    assert "endpoint_identifier_order = ip" in files["pjsip.conf"]
    assert not [name for name, _ in concrete if name.startswith("100")]
    kinds = {opts.get("type", "endpoint"): opts for name, opts in concrete if name == "edge"}
    assert kinds["identify"]["match"] == "127.0.0.1"
    assert kinds["aor"]["contact"] == "sip:127.0.0.1:5070"
    # in-dialog requests follow the edge's Record-Route to the phone's own Contact
    assert kinds["endpoint"]["rewrite_contact"] == "no"
    assert files["extensions.conf"].count("Dial(PJSIP/${ARG1}@edge,${ARG2}") == 2
    # it cannot see registrations: before the notice it asks the edge whether the callee can ring at all
    assert '"${CURL(http://127.0.0.1:5072/registered/${ARG1})}" = "no"' in files["extensions.conf"]
    assert "DEVICE_STATE" not in files["extensions.conf"]


def test_each_node_has_its_own_address_ports_rtp_range_and_ari_app(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    first, second = (node_config(base, i, 2, EDGE) for i in (1, 2))

    assert (first.sip_bind, second.sip_bind) == ("127.0.0.2", "127.0.0.3")
    assert first.ari_app != second.ari_app and first.name != second.name
    assert len({base.http_port, first.http_port, second.http_port}) == 3
    assert len({base.status_port, first.status_port, second.status_port}) == 3
    assert first.rtp_end < second.rtp_start and first.rtp_start % 2 == 0 and second.rtp_start % 2 == 0
    assert rtp_range(base, 2, 2)[1] <= base.rtp_end
    # one deployment for the console: the same event stream, knowledge index and recordings folder
    for node in (first, second):
        env = node.process_env()
        assert env["AIPBX_INSTANCE"] == base.name and env["AIPBX_KNOWLEDGE_PREFIX"] == f"kb{base.name}"
        assert env["AIPBX_ARI_APP"] == node.ari_app and node.recordings_dir == base.recordings_dir
    assert first.cdr_dir != second.cdr_dir  # each ARI app writes its CDR lines exactly once, to its own file


def test_the_dispatcher_probes_every_node_from_the_address_the_nodes_trust() -> None:
    rows = dispatcher_rows([("127.0.0.2", 5060), ("127.0.0.3", 5060)], EDGE)

    assert [row[1] for row in rows] == ["sip:127.0.0.2:5060", "sip:127.0.0.3:5060"]
    assert {row[0] for row in rows} == {1} and {row[2] & 8 for row in rows} == {8}  # set 1, probed
    assert all("socket=udp:127.0.0.1:5070" in row[3] for row in rows)
    assert len({row[3].split(";")[0] for row in rows}) == 2  # a distinct duid each
    assert "maxload" not in rows[0][3]  # no cap unless one is set


def test_a_node_keeps_its_call_count_id_whatever_joins_or_leaves_and_may_have_a_cap() -> None:
    both = dispatcher_rows([("127.0.0.2", 5060), ("127.0.0.3", 5060)], EDGE, max_calls=30)
    second_only = dispatcher_rows([("127.0.0.3", 5060)], EDGE, max_calls=30)

    # the call-load algorithm counts calls against the duid: the second node's must not become the first's
    assert second_only[0][3] == both[1][3]
    assert all(row[3].endswith(";maxload=30") for row in both)


def test_kamcmd_dispatcher_list_is_read_per_node() -> None:
    text = """{
	NRSETS: 1
	RECORDS: {
		SET: {
			ID: 1
			TARGETS: {
				DEST: {
					URI: sip:127.0.0.2:40000
					FLAGS: AP
					PRIORITY: 0
				}
				DEST: {
					URI: sip:127.0.0.3:40002
					FLAGS: IP
					PRIORITY: 0
				}
			}
		}
	}
}"""
    assert parse_dispatcher_list(text) == {("127.0.0.2", 40000): "AP", ("127.0.0.3", 40002): "IP"}


def test_kamcmd_dispatcher_list_gives_each_node_s_calls_in_progress() -> None:
    text = """{
	NRSETS: 1
	RECORDS: {
		SET: {
			ID: 1
			TARGETS: {
				DEST: {
					URI: sip:127.0.0.2:40000
					FLAGS: AP
					PRIORITY: 0
					ATTRS: {
						BODY: duid=127.0.0.2_40000;socket=udp:127.0.0.1:5070
						DUID: 127.0.0.2_40000
						MAXLOAD: 0
					}
					RUNTIME: {
						DLGLOAD: 2
					}
				}
				DEST: {
					URI: sip:127.0.0.3:40002
					FLAGS: AP
					PRIORITY: 0
					RUNTIME: {
						DLGLOAD: 0
					}
				}
			}
		}
	}
}"""
    assert parse_dispatcher_loads(text) == {("127.0.0.2", 40000): 2, ("127.0.0.3", 40002): 0}
    assert parse_dispatcher_list(text) == {("127.0.0.2", 40000): "AP", ("127.0.0.3", 40002): "AP"}


def test_the_edge_authenticates_every_extension_with_its_single_node_password(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    edge = edge_config(base, [node_config(base, i, 2, EDGE) for i in (1, 2)])

    assert edge.subscribers == {ext.ext: base.sip_password(ext.ext) for ext in base.directory}
    assert edge.nodes == [("127.0.0.2", base.sip_port), ("127.0.0.3", base.sip_port)]
    assert edge.db_password not in edge.subscribers.values()


def test_the_rendered_edge_config_parses(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    edge = edge_config(base, [node_config(base, i, 2, EDGE) for i in (1, 2)], port=5070)
    (path,) = render_edge(edge)

    text = path.read_text(encoding="utf-8")
    assert "@@" not in text and "listen=udp:127.0.0.1:5070" in text
    assert "listen=tcp:127.0.0.1:5072" in text  # the nodes' registration lookup: the nodes' side, loopback
    assert 'ds_select_dst("1", "10")' in text  # the fewest calls in progress, not round robin
    assert path.stat().st_mode & 0o077 == 0o040  # the database password: not for others
    check = subprocess.run(["kamailio", "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-2000:]


def test_the_edge_offers_tls_with_a_self_signed_certificate_kept_across_renders(tmp_path: Path) -> None:
    import ssl

    base = base_config(tmp_path)
    edge = edge_config(base, [node_config(base, i, 2, EDGE) for i in (1, 2)], port=5070, tls_port=5071)
    (path,) = render_edge(edge)

    text = path.read_text(encoding="utf-8")
    cert, key = edge.tls_files
    assert "enable_tls=yes" in text and f"listen=tls:{edge.listen[0]}:5071" in text
    live_cert, live_key = edge.live_tls_files  # copies the edge can read once it is no longer root
    assert f'"certificate", "{live_cert}")' in text and f'"private_key", "{live_key}")' in text
    assert cert.parent == edge.var_dir / "tls" and key.stat().st_mode & 0o077 == 0  # the key: its owner's only
    # a phone given the certificate as its trust anchor accepts it for the edge's address
    context = ssl.create_default_context(cafile=str(cert))
    assert context.cert_store_stats()["x509_ca"] == 1
    first = cert.read_bytes()
    render_edge(edge)
    assert cert.read_bytes() == first  # a phone that pinned it goes on working
    # the nodes' lookup answers on its own loopback listener only, not on a phone's TLS connection
    assert '$Rp != 5072 || $pr != "tcp"' in text


def test_the_edge_uses_the_deployment_s_certificate_when_it_has_one_and_no_tls_at_port_zero(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    base.tls_cert, base.tls_key = tmp_path / "given-cert.pem", tmp_path / "given-key.pem"
    nodes = [node_config(base, i, 2, EDGE) for i in (1, 2)]
    given = edge_config(base, nodes, port=5070)

    assert given.tls_port == base.tls_port and given.tls_files == (base.tls_cert, base.tls_key)
    off = edge_config(base_config(tmp_path), nodes, port=5070, tls_port=0)
    (path,) = render_edge(off)
    assert "listen=tls:" not in path.read_text(encoding="utf-8") and not off.tls_dir.exists()


def test_nodes_on_other_hosts_reach_the_edge_and_its_lookup_at_its_node_side_address(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    base.sip_bind = "0.0.0.0"
    base.node_addresses, base.edge_node_address = ("10.0.0.11", "10.0.0.12"), "10.0.0.10"

    nodes = nodes_of(base, 2)
    edge = edge_config(base, nodes)

    # the nodes listen at their hosts' addresses and offer them for media (no LAN-address rewrite)
    assert [node.sip_bind for node in nodes] == ["10.0.0.11", "10.0.0.12"]
    assert [node.media_address for node in nodes] == ["", ""]
    # they trust, and ring phones through, the edge's node-side address; they ask its lookup there
    assert {node.edge for node in nodes} == {("10.0.0.10", base.sip_port)}
    assert {node.edge_lookup_url for node in nodes} == {f"http://10.0.0.10:{base.sip_port + 2}/registered"}
    assert edge.address == ("10.0.0.10", base.sip_port) and "10.0.0.10" in edge.listen
    assert edge.lookup == ("10.0.0.10", base.sip_port + 2)
    assert all(f"socket=udp:10.0.0.10:{base.sip_port}" in row[3] for row in dispatcher_rows(edge.nodes, edge.address))
    text = render_edge(edge)[0].read_text(encoding="utf-8")
    assert f"listen=tcp:10.0.0.10:{base.sip_port + 2}" in text
    # the lookup answers the nodes (any port, any protocol) and this host's loopback, nobody else
    assert '!($si == "127.0.0.1" || ds_is_from_list("1", "3"))' in text


def test_the_lookup_may_listen_on_an_address_of_its_own(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    base.node_addresses, base.edge_node_address, base.edge_lookup_address = ("10.0.0.11",), "10.0.0.10", "10.0.1.10"

    (node,) = nodes_of(base, 1)
    edge = edge_config(base, [node])

    assert node.edge_lookup_url == f"http://10.0.1.10:{base.sip_port + 2}/registered"
    assert edge.lookup == ("10.0.1.10", base.sip_port + 2) and edge.address[0] == "10.0.0.10"


def test_node_and_edge_addresses_come_from_the_environment() -> None:
    env = {"AIPBX_NODE_ADDRESSES": "10.0.0.11, 10.0.0.12", "AIPBX_EDGE_NODE_ADDRESS": "10.0.0.10"}

    assert cluster_settings(env) == {
        "node_addresses": ("10.0.0.11", "10.0.0.12"),
        "edge_node_address": "10.0.0.10",
        "edge_lookup_address": "",
    }
    assert cluster_settings({}) == {"node_addresses": (), "edge_node_address": "", "edge_lookup_address": ""}
    # nodes on other hosts cannot reach the edge on its loopback
    with pytest.raises(SettingsError, match="AIPBX_EDGE_NODE_ADDRESS"):
        cluster_settings({"AIPBX_NODE_ADDRESSES": "10.0.0.11"})
    with pytest.raises(SettingsError, match="AIPBX_NODE_ADDRESSES"):
        cluster_settings({"AIPBX_NODE_ADDRESSES": "node1.lan", "AIPBX_EDGE_NODE_ADDRESS": "10.0.0.10"})
    with pytest.raises(SettingsError, match="AIPBX_EDGE_LOOKUP_ADDRESS"):
        cluster_settings({"AIPBX_EDGE_LOOKUP_ADDRESS": "10.0.0"})


def test_the_edge_handles_phones_behind_a_nat_and_nodes_send_media_where_it_comes_from(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    edge = edge_config(base, [node_config(base, i, 2, EDGE) for i in (1, 2)], port=5070)
    edge.nat_ping_interval = 25
    text = render_edge(edge)[0].read_text(encoding="utf-8")

    assert 'loadmodule "nathelper.so"' in text and 'modparam("nathelper", "natping_interval", 25)' in text
    assert "fix_nated_register();" in text and "fix_nated_contact();" in text
    assert 'modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")' in text
    # the node: media back to where the phone's RTP comes from, whatever its SDP says
    files = rendered_node(tmp_path)
    (endpoint,) = [opts for name, t, opts in sections(files["pjsip.conf"]) if name == "edge" and "aors" in opts]
    assert endpoint["rtp_symmetric"] == "yes"


def test_make_up_refuses_nodes_whose_address_is_not_this_host_s_before_starting_anything(tmp_path: Path) -> None:
    from stack.cluster import check_placement, on_this_host

    base = base_config(tmp_path)
    # 192.0.2.0/24 (TEST-NET-1): never an address of this host
    base.node_addresses, base.edge_node_address = ("127.0.0.2", "192.0.2.12"), "127.0.0.1"

    with pytest.raises(SettingsError, match=r"t1-n2 \(192\.0\.2\.12\)"):
        check_placement(base, 2)
    check_placement(base, 1)  # only the first node: on loopback
    assert on_this_host("127.0.0.5") and not on_this_host("192.0.2.12")
