"""Topology: the matrix as a coloured grid, the link graph as inline SVG, and
the cluster view."""


def test_the_matrix_draws_every_link_with_its_kind(login, member_a, cluster):
    html = login(member_a).get("/hosts/dgx-1/topology/").content.decode()
    assert html.count('class="link-NV">NV12<') == 8 * 7
    assert 'class="link-PXB">PXB<' in html and 'class="link-SYS">SYS<' in html
    assert "NUMA 3" in html and "CPU affinity" in html
    assert "NVLink (NV#)" in html  # legend


def test_the_link_graph_is_inline_svg(login, member_a, cluster):
    html = login(member_a).get("/hosts/dgx-1/topology/").content.decode()
    assert '<svg class="linkgraph"' in html
    assert html.count('stroke="#166534"') == 28  # every NVLink pair of 8 GPUs
    assert "<title>GPU0 – GPU1: NV12</title>" in html


def test_a_pcie_host_has_no_nvlink_lines(login, member_a, cluster):
    html = login(member_a).get("/hosts/ada-1/topology/").content.decode()
    assert "0 GPU pairs joined by NVLink" in html


def test_the_cluster_view_groups_hosts_by_model(login, member_a, cluster):
    html = login(member_a).get("/topology/").content.decode()
    assert "A100-SXM4-40GB" in html and "H100-SXM5-80GB" in html and "RTX-6000-Ada" in html
    assert html.count('class="hosttile') == 4


def test_an_unknown_host_is_404(login, member_a, cluster):
    assert login(member_a).get("/hosts/nope/topology/").status_code == 404
