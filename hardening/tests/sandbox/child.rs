//! The child's side: enter a role's sandbox (or the supervisor's filter), then do one thing.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kammer_hardening::{Role, SandboxError, enter, harden_supervisor, install_filters};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn};

use crate::{DIR, NOBODY, root, run, sandbox};

/// Enters the sandbox (unless the role is `none`), then does `action`. Exit code 0: it
/// worked; 3: it was denied with an error; 4: something else went wrong (message on stderr);
/// killed by SIGSYS: the filter stopped it.
pub(crate) fn child(spec: &str) -> ! {
    let (role, action) = spec.split_once(':').expect("ROLE:ACTION");
    let dir = std::env::var_os(DIR).map(PathBuf::from);
    if let Some(dir) = &dir
        && root()
        && std::fs::metadata(dir).is_ok_and(|meta| meta.uid() != NOBODY.0)
    {
        // Owned by root and 0700 once the child runs as nobody: make it the child's.
        std::os::unix::fs::chown(dir, Some(NOBODY.0), Some(NOBODY.1)).expect("chown");
    }
    let outcome = match role {
        "none" => plain(action),
        "supervisor" => supervisor(action),
        role => {
            let role: Role = role.parse().expect("role");
            sandboxed(role, action, dir.as_deref())
        }
    };
    std::process::exit(match outcome {
        Ok(()) => 0,
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => 3,
        Err(error) => {
            eprintln!("{spec}: {error}");
            4
        }
    })
}

fn sandboxed(role: Role, action: &str, dir: Option<&Path>) -> std::io::Result<()> {
    // What must exist before the sandbox: sockets bound or connected by the supervisor.
    let allowed = TcpListener::bind("127.0.0.1:0")?;
    let denied = TcpListener::bind("127.0.0.1:0")?;
    let ports = vec![allowed.local_addr()?.port()];
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let udp = UdpSocket::bind("127.0.0.1:0")?;
    let peer = UdpSocket::bind("127.0.0.1:0")?;

    if action == "threads" {
        // Refused: an extra thread exists.
        let (release, parked) = std::sync::mpsc::channel::<()>();
        let extra = std::thread::spawn(move || parked.recv());
        let refused = matches!(
            enter(&sandbox(role, dir, ports)),
            Err(SandboxError::Threads(2))
        );
        drop(release);
        let _ = extra.join();
        return if refused {
            Ok(())
        } else {
            Err(std::io::Error::other("enter did not refuse"))
        };
    }

    let applied = enter(&sandbox(role, dir, ports)).map_err(std::io::Error::other)?;
    if applied.seccomp_filters != 2 {
        return Err(std::io::Error::other("not two filters"));
    }
    match action {
        "work" => {
            common_work()?;
            match role {
                Role::Signal => signal_work(listener, client),
                Role::Media => media_work(udp, peer),
                Role::Keys => keys_work(dir.expect("a directory")),
                Role::Supervisor => unreachable!("enter refuses the supervisor"),
            }
        }
        "wait" => {
            // Report, keep a file open (the key manager: in its directory), and stay alive
            // for `inspect` until the parent closes stdin.
            let _held = match dir {
                Some(dir) => Some(std::fs::File::create(dir.join("held"))?),
                None => None,
            };
            let json = serde_json::to_string(&applied).map_err(std::io::Error::other)?;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{json}")?;
            stdout.flush()?;
            let _ = std::io::stdin().read(&mut [0u8; 1]);
            Ok(())
        }
        "write-inside" => {
            let path = dir.expect("a directory").join("inside");
            std::fs::write(&path, b"ok")?;
            std::fs::read(&path).map(drop)
        }
        "read-outside" => std::fs::read("/etc/hostname").map(drop),
        "connect-allowed" => TcpStream::connect(allowed.local_addr()?).map(drop),
        "connect-denied" => TcpStream::connect(denied.local_addr()?).map(drop),
        // Argument rules: a process (clone without CLONE_THREAD), executable memory, sockets
        // of other kinds; and `abort()`, which must end in SIGABRT, not SIGSYS.
        "fork" => std::process::Command::new("/bin/true").spawn().map(drop),
        "exec-memory" => executable_page(),
        "abort" => std::process::abort(),
        "unix-socket" => std::os::unix::net::UnixDatagram::unbound().map(drop),
        "udp-socket" => UdpSocket::bind("127.0.0.1:0").map(drop),
        "raw-socket" => nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Raw,
            nix::sys::socket::SockFlag::empty(),
            nix::sys::socket::SockProtocol::Icmp,
        )
        .map(drop)
        .map_err(std::io::Error::from),
        violation => {
            kammer_hardening::trigger::attempt(violation.parse().map_err(std::io::Error::other)?)
        }
    }
}

/// What every worker does: threads, memory, a Unix socket pair, a descriptor passed over it.
fn common_work() -> std::io::Result<()> {
    let handle = std::thread::Builder::new()
        .name("worker".to_owned())
        .spawn(|| {
            vec![7u8; 1 << 20]
                .iter()
                .map(|b| u64::from(*b))
                .sum::<u64>()
        })?;
    if handle.join().ok() != Some(7 << 20) {
        return Err(std::io::Error::other("thread"));
    }
    let mut grown = Vec::with_capacity(1 << 20);
    grown.resize(64 << 20, 1u8);
    drop(grown);

    let (mut a, mut b) = UnixStream::pair()?;
    a.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    b.read_exact(&mut buf)?;

    // SCM_RIGHTS, as the supervisor hands a new media link to the signalling worker.
    let (passed, mut kept) = UnixStream::pair()?;
    nix::sys::socket::sendmsg::<()>(
        a.as_raw_fd(),
        &[IoSlice::new(b"x")],
        &[ControlMessage::ScmRights(&[passed.as_raw_fd()])],
        MsgFlags::empty(),
        None,
    )?;
    drop(passed);
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let message = nix::sys::socket::recvmsg::<()>(
        b.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )?;
    let mut received = None;
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            received = fds.first().copied();
        }
    }
    let mut link = UnixStream::from(owned(received.ok_or(std::io::Error::other("no fd"))?));
    link.write_all(b"link")?;
    kept.read_exact(&mut buf)?;
    if &buf != b"link" {
        return Err(std::io::Error::other("SCM_RIGHTS"));
    }
    Ok(())
}

/// Takes ownership of a descriptor that arrived with `SCM_RIGHTS`.
#[allow(unsafe_code)]
fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel installed `fd` in this process for this message just now; nothing
    // else refers to it, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Maps a fresh anonymous page readable and executable.
#[allow(unsafe_code)]
fn executable_page() -> std::io::Result<()> {
    use nix::sys::mman::{MapFlags, ProtFlags};
    let length = std::num::NonZeroUsize::new(4096).expect("non-zero");
    // SAFETY: a new private anonymous mapping at an address the kernel picks overlaps no
    // existing memory; it is never read, written or run, and unmapped at once.
    unsafe {
        let page = nix::sys::mman::mmap_anonymous(
            None,
            length,
            ProtFlags::PROT_READ | ProtFlags::PROT_EXEC,
            MapFlags::MAP_PRIVATE,
        )?;
        nix::sys::mman::munmap(page, length.get())?;
    }
    Ok(())
}

/// The signalling worker's shape: a multi-thread runtime (2 workers, blocking pool), an
/// inherited listener, an accepted connection with `TCP_NODELAY`, timers.
fn signal_work(listener: TcpListener, client: TcpStream) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("kammer-net")
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (mut accepted, _) = listener.accept().await?;
        accepted.set_nodelay(true)?;
        accepted.peer_addr()?;
        let echo = tokio::spawn(async move {
            let mut buf = [0u8; 5];
            accepted.read_exact(&mut buf).await?;
            accepted.write_all(&buf).await?;
            std::io::Result::Ok(())
        });
        let blocking = tokio::task::spawn_blocking(move || {
            let mut client = client;
            client.write_all(b"hello")?;
            let mut buf = [0u8; 5];
            client.read_exact(&mut buf)?;
            std::io::Result::Ok(buf)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        echo.await.map_err(std::io::Error::other)??;
        let buf = blocking.await.map_err(std::io::Error::other)??;
        if &buf != b"hello" {
            return Err(std::io::Error::other("echo"));
        }
        let (mut x, mut y) = tokio::net::UnixStream::pair()?;
        x.write_all(b"ipc").await?;
        let mut buf = [0u8; 3];
        y.read_exact(&mut buf).await?;
        Ok(())
    })?;
    drop(runtime);
    Ok(())
}

/// The media worker's shape: a thread with a current-thread runtime over an inherited UDP
/// socket, datagrams both ways, and a segmented send (`UDP_SEGMENT`).
fn media_work(udp: UdpSocket, peer: UdpSocket) -> std::io::Result<()> {
    udp.set_nonblocking(true)?;
    let thread = std::thread::Builder::new()
        .name("kammer-media".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let socket = tokio::net::UdpSocket::from_std(udp)?;
                let to = peer.local_addr()?;
                socket.send_to(b"stun", to).await?;
                let mut buf = [0u8; 64];
                let (n, from) = peer.recv_from(&mut buf)?;
                peer.send_to(&buf[..n], from)?;
                let (n, _) = socket.recv_from(&mut buf).await?;
                if &buf[..n] != b"stun" {
                    return Err(std::io::Error::other("datagram"));
                }
                let std::net::SocketAddr::V4(v4) = to else {
                    return Err(std::io::Error::other("v4"));
                };
                let segment: u16 = 4;
                socket.writable().await?;
                nix::sys::socket::sendmsg(
                    socket.as_raw_fd(),
                    &[IoSlice::new(b"rtp1rtp2")],
                    &[ControlMessage::UdpGsoSegments(&segment)],
                    MsgFlags::empty(),
                    Some(&SockaddrIn::from(v4)),
                )?;
                for expected in [b"rtp1", b"rtp2"] {
                    let n = peer.recv(&mut buf)?;
                    if &buf[..n] != expected {
                        return Err(std::io::Error::other("segment"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(())
            })
        })?;
    thread
        .join()
        .map_err(|_| std::io::Error::other("media thread"))?
}

/// The key manager's files: directories, atomic replacement, durability, locks, modes.
fn keys_work(dir: &Path) -> std::io::Result<()> {
    let keys = dir.join("keys");
    std::fs::DirBuilder::new().mode(0o700).create(&keys)?;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700))?;
    let temporary = keys.join("blob.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(b"sealed")?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, keys.join("blob"))?;
    std::fs::File::open(&keys)?.sync_all()?;
    let file = std::fs::File::open(keys.join("blob"))?;
    let locked = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, errno)| errno)?;
    drop(locked);
    if std::fs::read(keys.join("blob"))? != b"sealed" {
        return Err(std::io::Error::other("read back"));
    }
    let mut audit = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("audit.log"))?;
    audit.write_all(b"record\n")?;
    audit.sync_data()?;
    let names = std::fs::read_dir(&keys)?.count();
    std::fs::metadata(keys.join("blob"))?;
    std::fs::remove_file(keys.join("blob"))?;
    if names != 1 {
        return Err(std::io::Error::other("listing"));
    }
    Ok(())
}

/// No sandbox: stay alive until stdin closes.
fn plain(action: &str) -> std::io::Result<()> {
    assert_eq!(action, "wait");
    println!("{{}}");
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    Ok(())
}

/// The supervisor's filter, then children started under it that enter their own sandboxes.
fn supervisor(action: &str) -> std::io::Result<()> {
    harden_supervisor().map_err(std::io::Error::other)?;
    let filters = install_filters(Role::Supervisor).map_err(std::io::Error::other)?;
    if filters != 2 {
        return Err(std::io::Error::other("not two filters"));
    }
    match action {
        "start-children" => {
            // A status file, as the supervisor keeps one.
            if let Some(dir) = std::env::var_os(DIR).map(PathBuf::from) {
                let run = dir.join("run");
                std::fs::DirBuilder::new().mode(0o700).create(&run)?;
                std::fs::write(run.join("status.json.tmp"), b"{}")?;
                std::fs::rename(run.join("status.json.tmp"), run.join("status.json"))?;
            }
            for (spec, signal) in [
                ("keys:work", None),
                ("signal:work", None),
                ("media:work", None),
                ("media:execve", Some(libc::SIGSYS)),
            ] {
                let status = run(spec);
                let ok = match signal {
                    None => status.code() == Some(0),
                    Some(signal) => status.signal() == Some(signal),
                };
                if !ok {
                    return Err(std::io::Error::other(format!("{spec}: {status}")));
                }
            }
            Ok(())
        }
        violation => {
            kammer_hardening::trigger::attempt(violation.parse().map_err(std::io::Error::other)?)
        }
    }
}
