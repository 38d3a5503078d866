"""docker-py (PyPI `docker`) against berth: IPv6 networks and the endpoint fields docker-py
sends (Links, DriverOpts, LinkLocalIPs, AuxiliaryAddresses, IPAM options), as dockerd
answers them. The daemon runs in a network namespace of the test's own.

argv: socket, image, a unique prefix.
"""
import sys

import docker
from docker.types import IPAMConfig, IPAMPool

from helpers import inside, namer

sock, image, prefix = sys.argv[1:4]
client = docker.DockerClient(base_url="unix://" + sock, timeout=60)
api = client.api
name = namer(prefix)

ipam = IPAMConfig(
    pool_configs=[
        IPAMPool(subnet="10.250.7.0/24", aux_addresses={"router": "10.250.7.2"}),
        IPAMPool(subnet="fd5b:7:7::/64", gateway="fd5b:7:7::1",
                 aux_addresses={"router6": "fd5b:7:7::2"}),
    ],
    options={"com.example.ipam": "kept"},
)
net = client.networks.create(name("v6"), driver="bridge", enable_ipv6=True, ipam=ipam)
net.reload()
assert net.attrs["EnableIPv6"] is True, net.attrs
cfg = net.attrs["IPAM"]["Config"]
assert cfg == [
    {"Subnet": "10.250.7.0/24", "AuxiliaryAddresses": {"router": "10.250.7.2"}},
    {"Subnet": "fd5b:7:7::/64", "Gateway": "fd5b:7:7::1",
     "AuxiliaryAddresses": {"router6": "fd5b:7:7::2"}},
], cfg
assert net.attrs["IPAM"]["Options"] == {"com.example.ipam": "kept"}, net.attrs["IPAM"]

srv = client.containers.run(image, ["sleep", "60"], detach=True, name=name("srv"),
                            network=net.name)
ctr = api.create_container(image, ["sleep", "60"], name=name("cli"),
                           host_config=api.create_host_config(network_mode=net.name),
                           networking_config=api.create_networking_config({
                               net.name: api.create_endpoint_config(
                                   ipv6_address="fd5b:7:7::99",
                                   links=[(name("srv"), "backend")],
                                   link_local_ips=["169.254.7.7", "fe80::7:7"],
                                   driver_opt={"com.example.opt": "1"},
                               )}))
api.start(ctr)
cli = client.containers.get(ctr["Id"])
ep = api.inspect_container(ctr)["NetworkSettings"]["Networks"][net.name]
assert ep["GlobalIPv6Address"] == "fd5b:7:7::99" and ep["GlobalIPv6PrefixLen"] == 64, ep
assert ep["IPv6Gateway"] == "fd5b:7:7::1", ep
assert ep["IPAMConfig"] == {"IPv6Address": "fd5b:7:7::99",
                            "LinkLocalIPs": ["169.254.7.7", "fe80::7:7"]}, ep["IPAMConfig"]
assert ep["Links"] == [f"{name('srv')}:backend"], ep["Links"]
assert ep["DriverOpts"] == {"com.example.opt": "1"}, ep["DriverOpts"]
# The auxiliary addresses are never handed out (the server took the first free one).
srv.reload()
sep = srv.attrs["NetworkSettings"]["Networks"][net.name]
assert sep["IPAddress"] == "10.250.7.3", sep
assert sep["GlobalIPv6Address"] == "fd5b:7:7::3", sep

# Inside: the addresses (IPv6 without duplicate address detection), the link-local ones, the
# route through the gateway; the server reached over IPv6 by address, by name and through the
# link's alias (AAAA answers of 127.0.0.11).
addrs = inside(cli, "ip -o addr show eth0")
for a in ["inet6 fd5b:7:7::99/64", "inet 169.254.7.7/16", "inet6 fe80::7:7/64"]:
    assert a in addrs, addrs
assert "default via fd5b:7:7::1" in inside(cli, "ip -6 route"), inside(cli, "ip -6 route")
for target in ["fd5b:7:7::3", name("srv"), "backend"]:
    out = inside(cli, f"ping6 -c 1 -W 3 {target}")
    assert "1 packets received" in out, (target, out)
aaaa = inside(cli, "nslookup -type=AAAA backend 127.0.0.11")
assert "fd5b:7:7::3" in aaaa, aaaa
assert "fd5b:7:7::99" in inside(cli, "cat /etc/hosts")
assert "1 packets received" in inside(cli, "ping6 -c 1 -W 3 fd5b:7:7::1")

# connect with ipv6_address to a running container.
other = client.networks.create(name("v6b"), enable_ipv6=True, ipam=IPAMConfig(
    pool_configs=[IPAMPool(subnet="fd5b:8:8::/64")]))
api.connect_container_to_network(ctr, other.id, ipv6_address="fd5b:8:8::8",
                                 aliases=["cli-alias"])
assert "inet6 fd5b:8:8::8/64" in inside(cli, "ip -o addr")
containers = api.inspect_network(other.id)["Containers"]
assert containers[ctr["Id"]]["IPv6Address"] == "fd5b:8:8::8/64", containers

# Bad inputs, with dockerd's words; nothing is left of them.
for bad, status, words in [
    ({"ipv6_address": "zz"}, 400, "invalid IPv6 address: zz"),
    ({"ipv6_address": "fd5b:9::1"}, 400, "fd5b:9::1"),
    ({"link_local_ips": ["10.0.0.1"]}, 400, "invalid link local IP address: 10.0.0.1"),
]:
    try:
        api.create_container(image, ["true"],
                             host_config=api.create_host_config(network_mode=net.name),
                             networking_config=api.create_networking_config(
                                 {net.name: api.create_endpoint_config(**bad)}))
        raise AssertionError(f"{bad} was taken")
    except docker.errors.APIError as e:
        assert e.status_code == status and words in e.explanation, (bad, e)
try:
    client.networks.create(name("overlap"), enable_ipv6=True, ipam=IPAMConfig(
        pool_configs=[IPAMPool(subnet="fd5b:7:7::/80")]))
    raise AssertionError("an overlapping IPv6 subnet was taken")
except docker.errors.APIError as e:
    assert "Pool overlaps with other one on this address space" in e.explanation, e
try:
    client.networks.create(name("aux"), ipam=IPAMConfig(
        pool_configs=[IPAMPool(subnet="10.250.9.0/24", aux_addresses={"a": "10.250.10.1"})]))
    raise AssertionError("an auxiliary address outside its subnet was taken")
except docker.errors.APIError as e:
    assert "must belong to the master pool" in e.explanation, e
names = [n.name for n in client.networks.list()]
assert name("overlap") not in names and name("aux") not in names, names

cli.remove(force=True)
srv.remove(force=True)
other.remove()
net.remove()
print("docker-py networks ok")
