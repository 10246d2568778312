//! The protocol model: every interface's requests, events and enums, read from the Wayland
//! protocol XML at run time.
//!
//! The fuzzer knows no interface by heart. It reads the same XML the compositor's bindings
//! were generated from, so a global lockstep starts to offer is fuzzed without a change here:
//! requests give the fuzzer what it can send (and with which argument types), events tell it
//! how to cut the incoming stream into messages, which fds to take off the socket and which
//! object ids the server creates (`wl_data_device.data_offer`).
//!
//! Where the XML comes from ([`discover`]), in order, highest interface version winning:
//! 1. Debian's `/usr/share/wayland/wayland.xml` (libwayland-dev) and
//!    `/usr/share/wayland-protocols/` (the `wayland-protocols` package);
//! 2. the XML inside the `wayland-*` crates of lockstep's own dependency tree, located with
//!    `cargo metadata` (downloaded by cargo if missing). These are exactly what smithay's
//!    server code was generated from, and they carry what Debian bookworm lacks
//!    (linux-drm-syncobj-v1, the wlr protocols).
//!
//! ```text
//! let (files, notes) = protocol::discover(workspace);   // or protocol::expand(&args.xml)
//! let protocols = Protocols::load(&files)?;
//! let surface = protocols.get("wl_surface").unwrap();   // requests/events by opcode
//! ```

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};

use anyhow::{bail, Context, Result};
use quick_xml::events::{BytesStart, Event};

/// The wire type of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgType {
    /// Signed 32-bit.
    Int,
    /// Unsigned 32-bit.
    Uint,
    /// 24.8 fixed point.
    Fixed,
    /// Length-prefixed, NUL-terminated, padded.
    String,
    /// An object id (0 for null).
    Object,
    /// A new object id; without an interface in the XML it is preceded by the interface
    /// name and version (`wl_registry.bind`).
    NewId,
    /// Length-prefixed bytes, padded.
    Array,
    /// A file descriptor, passed out of band (SCM_RIGHTS).
    Fd,
}

impl ArgType {
    fn parse(s: &str) -> Option<ArgType> {
        Some(match s {
            "int" => ArgType::Int,
            "uint" => ArgType::Uint,
            "fixed" => ArgType::Fixed,
            "string" => ArgType::String,
            "object" => ArgType::Object,
            "new_id" => ArgType::NewId,
            "array" => ArgType::Array,
            "fd" => ArgType::Fd,
            _ => return None,
        })
    }
}

/// One argument of a request or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// Its name in the XML (used for hints such as `serial`, `width`, `size`).
    pub name: String,
    /// Wire type.
    pub ty: ArgType,
    /// The interface of an `object` or `new_id`, when the XML names one.
    pub interface: Option<String>,
    /// `allow-null="true"`.
    pub nullable: bool,
    /// The enum the value comes from (`format`, or `wl_shm.format` for another interface's).
    pub enum_name: Option<String>,
}

/// One request or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its name.
    pub name: String,
    /// The first interface version that has it.
    pub since: u32,
    /// `type="destructor"`.
    pub destructor: bool,
    /// Arguments in wire order.
    pub args: Vec<Arg>,
}

/// An enum's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enum {
    /// Whether values combine as bits.
    pub bitfield: bool,
    /// Every entry's value.
    pub values: Vec<u32>,
}

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name, e.g. `wl_surface`.
    pub name: String,
    /// The highest version the XML describes.
    pub version: u32,
    /// Requests by opcode.
    pub requests: Vec<Message>,
    /// Events by opcode.
    pub events: Vec<Message>,
    /// Enums by their local name.
    pub enums: HashMap<String, Enum>,
}

/// Every interface the fuzzer knows, by name.
#[derive(Debug, Default, Clone)]
pub struct Protocols {
    interfaces: HashMap<String, Arc<Interface>>,
}

impl Protocols {
    /// Reads every file in `files`; where two describe the same interface the higher version
    /// wins (the earlier file on a tie).
    pub fn load(files: &[PathBuf]) -> Result<Protocols> {
        let mut protocols = Protocols::default();
        for file in files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let parsed =
                parse(&text).with_context(|| format!("cannot parse {}", file.display()))?;
            for interface in parsed {
                protocols.add(interface);
            }
        }
        if protocols.get("wl_display").is_none() {
            bail!(
                "no protocol XML describes wl_display (looked at {} files); install \
                 libwayland-dev or pass --xml",
                files.len()
            );
        }
        Ok(protocols)
    }

    fn add(&mut self, interface: Interface) {
        let better = self
            .interfaces
            .get(&interface.name)
            .is_none_or(|known| interface.version > known.version);
        if better {
            self.interfaces
                .insert(interface.name.clone(), Arc::new(interface));
        }
    }

    /// The interface called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Interface>> {
        self.interfaces.get(name)
    }

    /// How many interfaces are known.
    pub fn len(&self) -> usize {
        self.interfaces.len()
    }

    /// The enum an argument of `interface` refers to (`format` or `wl_shm.format`).
    pub fn enum_of<'a>(&'a self, interface: &'a Interface, enum_name: &str) -> Option<&'a Enum> {
        match enum_name.split_once('.') {
            Some((other, local)) => self.get(other)?.enums.get(local),
            None => interface.enums.get(enum_name),
        }
    }
}

fn attr(e: &BytesStart<'_>, key: &str) -> Result<Option<String>> {
    for a in e.attributes() {
        let a = a?;
        if a.key.as_ref() == key.as_bytes() {
            return Ok(Some(
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)?
                    .into_owned(),
            ));
        }
    }
    Ok(None)
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses one protocol XML document into its interfaces.
pub fn parse(text: &str) -> Result<Vec<Interface>> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut interfaces = Vec::new();
    let mut interface: Option<Interface> = None;
    // The message being read, and whether it is a request.
    let mut message: Option<(Message, bool)> = None;
    let mut enumeration: Option<(String, Enum)> = None;
    loop {
        let event = reader.read_event()?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            match e.name().as_ref() {
                b"interface" => {
                    let name = attr(e, "name")?.context("interface without a name")?;
                    let version = attr(e, "version")?.and_then(|v| parse_u32(&v)).unwrap_or(1);
                    interface = Some(Interface {
                        name,
                        version,
                        requests: Vec::new(),
                        events: Vec::new(),
                        enums: HashMap::new(),
                    });
                }
                kind @ (b"request" | b"event") => {
                    let name = attr(e, "name")?.context("message without a name")?;
                    let since = attr(e, "since")?.and_then(|v| parse_u32(&v)).unwrap_or(1);
                    let destructor = attr(e, "type")?.as_deref() == Some("destructor");
                    let msg = Message {
                        name,
                        since,
                        destructor,
                        args: Vec::new(),
                    };
                    let is_request = kind == b"request";
                    if empty {
                        push_message(&mut interface, msg, is_request)?;
                    } else {
                        message = Some((msg, is_request));
                    }
                }
                b"arg" => {
                    let (msg, _) = message.as_mut().context("<arg> outside a message")?;
                    let name = attr(e, "name")?.unwrap_or_default();
                    let ty = attr(e, "type")?.context("<arg> without a type")?;
                    let ty = ArgType::parse(&ty)
                        .with_context(|| format!("unknown argument type {ty:?}"))?;
                    msg.args.push(Arg {
                        name,
                        ty,
                        interface: attr(e, "interface")?,
                        nullable: attr(e, "allow-null")?.as_deref() == Some("true"),
                        enum_name: attr(e, "enum")?,
                    });
                }
                b"enum" => {
                    let name = attr(e, "name")?.context("enum without a name")?;
                    let bitfield = attr(e, "bitfield")?.as_deref() == Some("true");
                    let en = Enum {
                        bitfield,
                        values: Vec::new(),
                    };
                    if empty {
                        if let Some(i) = interface.as_mut() {
                            i.enums.insert(name, en);
                        }
                    } else {
                        enumeration = Some((name, en));
                    }
                }
                b"entry" => {
                    if let Some((_, en)) = enumeration.as_mut() {
                        if let Some(v) = attr(e, "value")?.and_then(|v| parse_u32(&v)) {
                            en.values.push(v);
                        }
                    }
                }
                _ => {}
            }
        }
        match event {
            Event::End(e) => match e.name().as_ref() {
                b"interface" => interfaces.extend(interface.take()),
                b"request" | b"event" => {
                    if let Some((msg, is_request)) = message.take() {
                        push_message(&mut interface, msg, is_request)?;
                    }
                }
                b"enum" => {
                    if let (Some((name, en)), Some(i)) = (enumeration.take(), interface.as_mut()) {
                        i.enums.insert(name, en);
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(interfaces)
}

fn push_message(interface: &mut Option<Interface>, msg: Message, is_request: bool) -> Result<()> {
    let i = interface.as_mut().context("message outside an interface")?;
    if is_request {
        i.requests.push(msg);
    } else {
        i.events.push(msg);
    }
    Ok(())
}

/// Every `*.xml` below `dir` (not in `tests/` folders: crates keep their test protocols
/// there, some of which redefine core interfaces).
fn xml_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                xml_below(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
}

/// Expands `--xml` arguments: files as they are, directories searched for `*.xml`.
pub fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            xml_below(path, &mut out);
        } else {
            out.push(path.clone());
        }
    }
    out
}

/// The XML files to read when none are given: Debian's, then the `wayland-*` crates' in the
/// dependency tree of the workspace at `workspace` (see the module docs). Returns the files
/// and notes for the run's header (e.g. why the crates could not be used).
pub fn discover(workspace: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut notes = Vec::new();
    let core = Path::new("/usr/share/wayland/wayland.xml");
    if core.is_file() {
        files.push(core.to_owned());
    } else {
        notes.push(format!("{} missing (libwayland-dev)", core.display()));
    }
    let debian = Path::new("/usr/share/wayland-protocols");
    if debian.is_dir() {
        xml_below(debian, &mut files);
    } else {
        notes.push(format!(
            "{} not installed (optional: the wayland-protocols crate's XML covers it)",
            debian.display()
        ));
    }
    match crate_dirs(workspace) {
        Ok(dirs) => {
            for dir in dirs {
                xml_below(&dir, &mut files);
            }
        }
        Err(err) => notes.push(format!("no XML from the wayland crates: {err:#}")),
    }
    (files, notes)
}

/// Source directories of the `wayland-*` packages in the workspace's dependency graph.
fn crate_dirs(workspace: &Path) -> Result<Vec<PathBuf>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = workspace.join("Cargo.toml");
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .with_context(|| format!("cannot run {} metadata", cargo.to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "cargo metadata for {} failed: {}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")?;
    let mut dirs = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        // Only the crates that ship protocol XML.
        let ships_xml = matches!(name, "wayland-client" | "wayland-server")
            || name.starts_with("wayland-protocols");
        if !ships_xml {
            continue;
        }
        if let Some(dir) = package["manifest_path"]
            .as_str()
            .and_then(|m| Path::new(m).parent())
        {
            dirs.push(dir.to_owned());
        }
    }
    dirs.sort();
    dirs.dedup();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<protocol name="sample">
  <copyright>a &amp; b</copyright>
  <interface name="x_thing" version="3">
    <description summary="s">text &lt;here&gt;</description>
    <request name="destroy" type="destructor"/>
    <request name="make" since="2">
      <arg name="id" type="new_id" interface="x_child"/>
      <arg name="fd" type="fd"/>
      <arg name="format" type="uint" enum="x_other.format"/>
      <arg name="parent" type="object" interface="x_thing" allow-null="true"/>
    </request>
    <event name="hello">
      <arg name="name" type="string"/>
      <arg name="offer" type="new_id" interface="x_child"/>
    </event>
    <enum name="flags" bitfield="true">
      <entry name="a" value="1"/>
      <entry name="b" value="0x2"/>
    </enum>
  </interface>
</protocol>"#;

    #[test]
    fn parses_messages_args_and_enums() {
        let interfaces = parse(SAMPLE).unwrap();
        assert_eq!(interfaces.len(), 1);
        let i = &interfaces[0];
        assert_eq!((i.name.as_str(), i.version), ("x_thing", 3));
        assert_eq!(i.requests.len(), 2);
        assert!(i.requests[0].destructor);
        assert!(i.requests[0].args.is_empty());
        let make = &i.requests[1];
        assert_eq!(make.since, 2);
        let types: Vec<ArgType> = make.args.iter().map(|a| a.ty).collect();
        assert_eq!(
            types,
            [ArgType::NewId, ArgType::Fd, ArgType::Uint, ArgType::Object]
        );
        assert_eq!(make.args[0].interface.as_deref(), Some("x_child"));
        assert_eq!(make.args[2].enum_name.as_deref(), Some("x_other.format"));
        assert!(make.args[3].nullable && !make.args[0].nullable);
        assert_eq!(i.events[0].args[1].ty, ArgType::NewId);
        let flags = &i.enums["flags"];
        assert!(flags.bitfield);
        assert_eq!(flags.values, [1, 2]);
    }

    #[test]
    fn higher_version_wins() {
        let mut p = Protocols::default();
        let mut i = parse(SAMPLE).unwrap().remove(0);
        p.add(i.clone());
        i.version = 2;
        p.add(i.clone());
        assert_eq!(p.get("x_thing").unwrap().version, 3);
        i.version = 4;
        p.add(i);
        assert_eq!(p.get("x_thing").unwrap().version, 4);
    }

    #[test]
    fn reads_the_core_protocol_when_installed() {
        let core = Path::new("/usr/share/wayland/wayland.xml");
        if !core.is_file() {
            return;
        }
        let p = Protocols::load(&[core.to_owned()]).unwrap();
        let registry = p.get("wl_registry").unwrap();
        let bind = &registry.requests[0];
        assert_eq!(bind.name, "bind");
        assert_eq!(bind.args[1].ty, ArgType::NewId);
        assert!(bind.args[1].interface.is_none());
        let shm = p.get("wl_shm").unwrap();
        assert!(p.enum_of(shm, "format").unwrap().values.len() > 10);
    }
}
