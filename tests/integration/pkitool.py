"""pkitool.py - certificates for the channel tests, made with the openssl CLI.

issue(ca_dir, out_dir, name, cn, start=None, end=None, days=30) signs a new
EC P-256 key's certificate for `cn` (CN and DNS SAN) with the CA in ca_dir
(ca.crt, ca.key as written by `gridgate pki init`), optionally with explicit
validity dates (YYYYMMDDHHMMSSZ) such as an expired window.
"""
import os
import subprocess

CNF = """[ca]
default_ca = ca_default
[ca_default]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = pol
unique_subject = no
[pol]
commonName = supplied
organizationName = optional
[ext]
subjectAltName = DNS:{cn}
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth,serverAuth
"""


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), out.stderr))
    return out.stdout


def issue(ca_dir, out_dir, name, cn, start=None, end=None, days=30):
    os.makedirs(out_dir, exist_ok=True)
    work = os.path.join(out_dir, name + ".ca")
    os.makedirs(work, exist_ok=True)
    open(os.path.join(work, "index.txt"), "w").close()
    with open(os.path.join(work, "serial"), "w") as f:
        f.write("%032x\n" % int.from_bytes(os.urandom(15), "big"))
    cnf = os.path.join(work, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(CNF.format(dir=work, cn=cn))
    key = os.path.join(out_dir, name + ".key")
    csr = os.path.join(work, name + ".csr")
    crt = os.path.join(out_dir, name + ".crt")
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", key])
    run(["openssl", "req", "-new", "-key", key, "-subj", "/O=gridgate/CN=%s" % cn, "-out", csr])
    cmd = ["openssl", "ca", "-batch", "-config", cnf, "-cert", os.path.join(ca_dir, "ca.crt"),
           "-keyfile", os.path.join(ca_dir, "ca.key"), "-in", csr, "-out", crt,
           "-extensions", "ext", "-notext"]
    if start and end:
        cmd += ["-startdate", start, "-enddate", end]
    else:
        cmd += ["-days", str(days)]
    run(cmd)
    return crt, key
