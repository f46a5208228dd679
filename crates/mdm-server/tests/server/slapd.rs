//! A real OpenLDAP `slapd` for the directory tests, started once per run in
//! a temporary directory with `ldap://` (StartTLS-capable) and `ldaps://`
//! listeners on loopback ports and a certificate made here with rcgen.
//!
//! The seed holds `ou=big` (2,000 users) and a service account
//! `cn=reader` whose size limit is 100 entries per search, so a sync can
//! only get all of `ou=big` through the Simple Paged Results control. Tests
//! change the directory with the OpenLDAP command-line tools (`ldapadd`,
//! `ldapmodify`, `ldapdelete`), never with the code under test, each in a
//! branch of its own.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub const SUFFIX: &str = "dc=example,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=test";
pub const ROOT_PW: &str = "adminpw";
pub const READER_DN: &str = "cn=reader,dc=example,dc=test";
pub const READER_PW: &str = "reader-secret";
pub const BIG_USERS: usize = 2000;
pub const SIZE_LIMIT: usize = 100;

pub struct Slapd {
    _dir: tempfile::TempDir,
    pub ldap_url: String,
    pub ldaps_url: String,
    /// The CA certificate of slapd's TLS certificate.
    pub ca_pem: String,
    pid_file: PathBuf,
}

static SLAPD: OnceLock<Result<Slapd, String>> = OnceLock::new();

/// The shared slapd, started on first use.
pub fn slapd() -> Result<&'static Slapd, String> {
    SLAPD.get_or_init(start).as_ref().map_err(Clone::clone)
}

/// Stops slapd if it was started.
pub fn shutdown() {
    if let Some(Ok(s)) = SLAPD.get()
        && let Ok(pid) = std::fs::read_to_string(&s.pid_file)
    {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// A CA and a server certificate for 127.0.0.1 / localhost, as PEM.
fn certificates() -> Result<(String, String, String), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Test LDAP CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(err)?;
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).map_err(err)?;
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    server
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = server.signed_by(&key, &issuer).map_err(err)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

/// An `inetOrgPerson` entry as LDIF.
pub fn person(dn: &str, uid: &str, cn: &str, mail: &str, password: &str) -> String {
    format!(
        "dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: Example\nmail: {mail}\nuserPassword: {password}\n\n"
    )
}

fn seed() -> String {
    let mut s = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {READER_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: reader\nuserPassword: {READER_PW}\n\n\
         dn: ou=big,{SUFFIX}\nobjectClass: organizationalUnit\nou: big\n\n"
    );
    for i in 0..BIG_USERS {
        let uid = format!("u{i:04}");
        s.push_str(&person(
            &format!("uid={uid},ou=big,{SUFFIX}"),
            &uid,
            &format!("User {i:04}"),
            &format!("{uid}@big.example.test"),
            "not-used",
        ));
    }
    s
}

fn start() -> Result<Slapd, String> {
    for tool in ["slapd", "slapadd", "ldapadd", "ldapmodify", "ldapdelete"] {
        let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(tool).exists());
        if !found {
            return Err(format!(
                "{tool} is not installed: run ./scripts/test (it installs slapd and ldap-utils) or apt-get install slapd ldap-utils"
            ));
        }
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    std::fs::create_dir_all(d.join("db")).map_err(|e| e.to_string())?;
    let (ca, cert, key) = certificates()?;
    for (name, pem) in [("ca.pem", &ca), ("server.pem", &cert), ("server.key", &key)] {
        std::fs::write(d.join(name), pem).map_err(|e| e.to_string())?;
    }
    let conf = format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         include /etc/ldap/schema/nis.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         moduleload memberof\n\
         pidfile {d}/slapd.pid\n\
         argsfile {d}/slapd.args\n\
         TLSCACertificateFile {d}/ca.pem\n\
         TLSCertificateFile {d}/server.pem\n\
         TLSCertificateKeyFile {d}/server.key\n\
         database mdb\n\
         maxsize 1073741824\n\
         suffix \"{SUFFIX}\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw {ROOT_PW}\n\
         directory {d}/db\n\
         index objectClass eq\n\
         index uid,mail,entryUUID eq\n\
         limits dn.exact=\"{READER_DN}\" size.soft={SIZE_LIMIT} size.hard={SIZE_LIMIT} size.pr={SIZE_LIMIT} size.prtotal=unlimited\n\
         overlay memberof\n\
         access to attrs=userPassword by self write by anonymous auth by * none\n\
         access to * by users read by * none\n",
        d = d.display()
    );
    std::fs::write(d.join("slapd.conf"), conf).map_err(|e| e.to_string())?;
    std::fs::write(d.join("seed.ldif"), seed()).map_err(|e| e.to_string())?;
    let conf = d.join("slapd.conf");
    run(
        Command::new("slapadd")
            .arg("-q")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(d.join("seed.ldif")),
        "slapadd",
    )?;
    let (p1, p2) = (free_port()?, free_port()?);
    let (ldap_url, ldaps_url) = (
        format!("ldap://127.0.0.1:{p1}"),
        format!("ldaps://127.0.0.1:{p2}"),
    );
    run(
        Command::new("slapd")
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("{ldap_url}/ {ldaps_url}/")),
        "slapd",
    )?;
    let s = Slapd {
        ldap_url,
        ldaps_url,
        ca_pem: ca,
        pid_file: d.join("slapd.pid"),
        _dir: dir,
    };
    for _ in 0..100 {
        let up = Command::new("ldapsearch")
            .args(["-x", "-H", &s.ldap_url, "-b", "", "-s", "base"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        if up {
            return Ok(s);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err("slapd did not start listening".into())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Slapd {
    /// Runs an OpenLDAP tool as the root DN with `ldif` on standard input.
    fn tool(&self, tool: &str, extra: &[&str], ldif: &str) -> Result<(), String> {
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.ldap_url, "-D", ROOT_DN, "-w", ROOT_PW])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{tool}: {e}"))?;
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(ldif.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed: {}\n{ldif}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Adds the entries of `ldif`.
    pub fn add(&self, ldif: &str) -> Result<(), String> {
        self.tool("ldapadd", &[], ldif)
    }

    /// Applies an LDIF change record (`changetype: modify`, `modrdn`, …).
    pub fn modify(&self, ldif: &str) -> Result<(), String> {
        self.tool("ldapmodify", &[], ldif)
    }

    /// Deletes the entries named one per line.
    pub fn delete(&self, dns: &[&str]) -> Result<(), String> {
        self.tool("ldapdelete", dns, "")
    }
}
