"""A secured local node (`lookalike opensearch start --secure`): the opensearch-security plugin
with TLS on HTTP and transport, users and a least-privilege role for Lookalike.

Everything secret is made per node, on first start, and kept in the node's directory (never in
the repository): a local CA, the node's certificate (CN=lookalike-node, for 127.0.0.1 and
localhost), an admin certificate (the plugin's super admin, for repairs), and two passwords in
`secrets.json` (0600): `admin` (all_access) and `lookalike` (the role below). The plugin loads
our opensearch-security/*.yml into its index at the node's first start
(`allow_default_init_securityindex`); later edits need securityadmin.sh, as on any cluster.

The `lookalike` role (ROLE) allows what ingest, search, admin create/swap/merge, dedup and the
review store do on the indices and aliases matching its patterns, and nothing else: no cluster
settings, no other index, no security API.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

USER = "lookalike"  # the least-privilege user our commands run as
ADMIN = "admin"  # all_access: for the operator, never for our commands
ORGANISATION = "Lookalike local node"
NODE_CN, ADMIN_CN = "lookalike-node", "lookalike-admin"
VALID_DAYS = 825
CERTS = "certs"  # under the node's config/
SECRETS = "secrets.json"  # in the node's home

# What Lookalike does on its own indices (`<alias>-<model>-<dim>-<stamp>`, `<alias>-review`) and
# aliases. Checked by the secured test tier: each suite passes as this user, and a user without
# it is refused with the permission named.
INDEX_PERMISSIONS = [
    "indices:data/read/*",  # search, get, mget, scroll, count, aggregations
    "indices:data/write/*",  # index, bulk, delete, update
    "indices:admin/create",  # admin create, ingest's first index, the review store
    "indices:admin/delete",  # a physical index replaced by swap (its own alias only)
    "indices:admin/get",  # exists, settings and mapping reads
    "indices:admin/mappings/get",
    "indices:admin/mapping/put",
    "indices:admin/aliases",  # swap: one atomic alias switch
    "indices:admin/aliases/get",
    "indices:admin/refresh*",
    "indices:admin/flush*",
    "indices:admin/forcemerge",  # admin merge
    "indices:admin/settings/update",  # bulk load: refresh interval and replicas, then back
    "indices:admin/resolve/index",
    "indices:monitor/stats",  # admin info: size and segments
    "indices:monitor/segments",  # admin merge: segments per shard, before and after
    "indices:monitor/settings/get",
]
CLUSTER_PERMISSIONS = [
    "cluster:monitor/main",  # GET /: the version, to pick version-dependent options
    "cluster:monitor/health",
    "cluster:monitor/nodes/info",  # which k-NN engines the nodes can run
    "cluster:monitor/state",
    "indices:data/read/scroll*",  # scroll and clear_scroll are cluster-level actions
    "indices:data/read/mget*",
    "indices:data/read/msearch*",
    "indices:data/write/bulk*",
    "indices:admin/aliases/get",
]


@dataclass(frozen=True)
class Secrets:
    admin_password: str
    password: str  # the `lookalike` user's
    user: str = USER

    @classmethod
    def made(cls) -> Secrets:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24))

    @classmethod
    def load(cls, home: Path) -> Secrets | None:
        path = home / SECRETS
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        return cls(saved["admin_password"], saved["password"], saved.get("user", USER))

    def save(self, home: Path) -> Path:
        path = home / SECRETS
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps({"user": self.user, "password": self.password,
                                    "admin_password": self.admin_password}, indent=2))  # fmt: skip
        return path

    def __repr__(self) -> str:  # never a password in a repr, a log or a report
        return f"Secrets(user={self.user!r}, passwords in {SECRETS})"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])  # fmt: skip


def distinguished_name(common_name: str) -> str:
    """The DN as the plugin compares it (RFC 4514: most specific first)."""
    return _name(common_name).rfc4514_string()


def _certificate(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, signer: rsa.RSAPrivateKey,
                 extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS)))  # fmt: skip
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def _write(folder: Path, name: str, certificate: x509.Certificate, key: rsa.RSAPrivateKey | None) -> None:
    (folder / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path = folder / f"{name}-key.pem"
        path.touch(mode=0o600, exist_ok=True)
        pkcs8 = serialization.PrivateFormat.PKCS8  # the plugin reads PKCS#8 keys only
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))


def make_certificates(folder: Path) -> None:
    """ca.pem, node.pem + node-key.pem, admin.pem + admin-key.pem in `folder` (kept if already there;
    the CA's key is not kept: nothing else is ever signed)."""
    if (folder / "node.pem").is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_name = _key(), _name("Lookalike local CA")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                       encipher_only=False, decipher_only=False), True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
    ])  # fmt: skip
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)  # fmt: skip
    node_key = _key()
    node = _certificate(_name(NODE_CN), node_key, ca_name, ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True), (usage, True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        (x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
         False),
    ])  # fmt: skip
    admin_key = _key()
    admin = _certificate(_name(ADMIN_CN), admin_key, ca_name, ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True), (usage, True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
    ])  # fmt: skip
    _write(folder, "ca", ca, None)
    _write(folder, "admin", admin, admin_key)
    _write(folder, "node", node, node_key)  # last: its presence says the set is complete


def node_settings() -> str:
    """The opensearch.yml lines that turn security on (paths relative to the node's config/)."""
    return "\n".join([
        "# Security (lookalike opensearch start --secure): TLS on HTTP and transport, users and roles.",
        f"plugins.security.ssl.transport.pemcert_filepath: {CERTS}/node.pem",
        f"plugins.security.ssl.transport.pemkey_filepath: {CERTS}/node-key.pem",
        f"plugins.security.ssl.transport.pemtrustedcas_filepath: {CERTS}/ca.pem",
        "plugins.security.ssl.transport.enforce_hostname_verification: false",
        "plugins.security.ssl.http.enabled: true",
        f"plugins.security.ssl.http.pemcert_filepath: {CERTS}/node.pem",
        f"plugins.security.ssl.http.pemkey_filepath: {CERTS}/node-key.pem",
        f"plugins.security.ssl.http.pemtrustedcas_filepath: {CERTS}/ca.pem",
        "plugins.security.allow_default_init_securityindex: true",
        f'plugins.security.authcz.admin_dn: ["{distinguished_name(ADMIN_CN)}"]',
        f'plugins.security.nodes_dn: ["{distinguished_name(NODE_CN)}"]',
        'plugins.security.restapi.roles_enabled: ["all_access"]',
        "plugins.security.system_indices.enabled: true",
        "plugins.security.audit.type: noop",
        "",
    ])  # fmt: skip


def _yaml(kind: str, body: str = "") -> str:
    return f'---\n_meta:\n  type: "{kind}"\n  config_version: 2\n{body}'


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode()


def _quoted(items: list[str], indent: int) -> str:
    return "".join(f'\n{" " * indent}- "{item}"' for item in items)


def write_config(conf: Path, made: Secrets, index_patterns: list[str]) -> None:
    """config/opensearch-security/*.yml: HTTP basic auth against the internal users `admin` and
    `lookalike`; the `lookalike` role on `index_patterns`."""
    folder = conf / "opensearch-security"
    folder.mkdir(parents=True, exist_ok=True)
    auth = """config:
  dynamic:
    http:
      anonymous_auth_enabled: false
    authc:
      basic_internal_auth_domain:
        description: "HTTP basic auth against the internal users"
        http_enabled: true
        transport_enabled: true
        order: 0
        http_authenticator:
          type: basic
          challenge: true
        authentication_backend:
          type: intern
"""
    users = f"""{ADMIN}:
  hash: "{_hash(made.admin_password)}"
  reserved: true
  backend_roles:
  - "admin"
  description: "The operator (all_access)"
{made.user}:
  hash: "{_hash(made.password)}"
  reserved: false
  description: "Lookalike's commands and API (role {USER})"
"""
    role = f"""{USER}:
  reserved: false
  description: "What Lookalike needs on its own indices and aliases, and no more"
  cluster_permissions:{_quoted(CLUSTER_PERMISSIONS, 2)}
  index_permissions:
  - index_patterns:{_quoted(index_patterns, 4)}
    allowed_actions:{_quoted(INDEX_PERMISSIONS, 4)}
"""
    mapping = f"""all_access:
  reserved: false
  backend_roles:
  - "admin"
{USER}:
  reserved: false
  users:
  - "{made.user}"
"""
    files = {"config.yml": _yaml("config", auth), "internal_users.yml": _yaml("internalusers", users),
             "roles.yml": _yaml("roles", role), "roles_mapping.yml": _yaml("rolesmapping", mapping),
             "action_groups.yml": _yaml("actiongroups"), "tenants.yml": _yaml("tenants"),
             "nodes_dn.yml": _yaml("nodesdn"), "allowlist.yml": _yaml("allowlist", "config:\n  enabled: false\n"),
             "audit.yml": _yaml("audit", "config:\n  enabled: false\n")}  # fmt: skip
    for name, text in files.items():
        path = folder / name
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(text)


def secure(home: Path, conf: Path, index_patterns: list[str]) -> Secrets:
    """Make (once) the certificates, passwords and security config of the node kept in `home`."""
    made = Secrets.load(home)
    if made is None:
        made = Secrets.made()
        made.save(home)
    make_certificates(conf / CERTS)
    if not (conf / "opensearch-security" / "internal_users.yml").is_file():
        write_config(conf, made, index_patterns)
    return made


def client_environment(url: str, home: Path) -> dict[str, str]:
    """The LOOKALIKE_OPENSEARCH_* settings that reach the secured node kept in `home` as `lookalike`."""
    made = Secrets.load(home)
    if made is None:
        raise FileNotFoundError(f"no {SECRETS} in {home}: is it a secured node (lookalike opensearch start --secure)?")
    return {"LOOKALIKE_OPENSEARCH_URL": url, "LOOKALIKE_OPENSEARCH_USER": made.user,
            "LOOKALIKE_OPENSEARCH_PASSWORD": made.password,
            "LOOKALIKE_OPENSEARCH_CA_FILE": str(home / "config" / CERTS / "ca.pem")}  # fmt: skip


def admin_auth(home: Path) -> tuple[str, str] | None:
    made = Secrets.load(home)
    return (ADMIN, made.admin_password) if made is not None else None
