//! Several processes on one SQLite file, as a host's web process and its refresher run
//! (`docs/operations.md`, "SQLite and several processes"). Each test starts copies of
//! this test binary, which run the `child` test below with a job, and then checks the
//! file they all wrote.

mod common;

use common::*;
use integrations_core::{StoreError, TokenStore, UserId};
use integrations_storage_diesel::{DieselStore, StoreOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The job of a child process: `<job>;<role>;<path>;<count>`.
const JOB_ENV: &str = "INTEGRATIONS_SQLITE_CHILD_JOB";
/// How a child reports what it did, on a line of its own.
const TALLY: &str = "child tally:";
/// The user owning the shared counter row.
const COUNTER_USER: i64 = 999;

fn options() -> StoreOptions {
    StoreOptions {
        max_connections: 4,
        ..StoreOptions::default()
    }
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn open(path: &Path) -> DieselStore {
    DieselStore::connect_with(&url(path), options())
        .await
        .unwrap_or_else(|e| panic!("connect {path:?}: {e}"))
}

/// What a process did: accounts claimed by `claim_due` and written back, and the times
/// it won the refresh lease of the shared row.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    written: usize,
    leased: usize,
}

/// A host and a refresher at once, `rounds` times: connect an account of its own, add
/// one to a counter row that every process updates (read, then a version-checked write,
/// retried on a conflict, as the service writes), take the refresh lease of a shared row
/// and write it under that lease (the single-flight refresh), claim due accounts with a
/// lease and write each back releasing the lease (the refresher's write), and append an
/// audit event. Every store call must succeed: a `database is locked` surfacing here
/// fails the job, and so does a write under a lease that another process also held.
async fn host_and_refresher(store: &DieselStore, role: usize, rounds: usize) -> Tally {
    let c = cipher();
    let shared = pid("reddit");
    let later = t0() + chrono::Duration::days(365);
    // The shared rows exist before the rounds start; role 0 creates them.
    if role == 0 {
        insert(store, account(&c, COUNTER_USER, "reddit", "counter", later)).await;
        insert(store, account(&c, COUNTER_USER, "reddit", "leased", later)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let leased_id = loop {
        let found = store
            .find_account(&shared, "leased")
            .await
            .unwrap_or_else(|e| panic!("role {role}: find the shared rows: {e}"));
        if let Some(row) = found {
            break row.id;
        }
        assert!(Instant::now() < deadline, "role {role}: no shared rows");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut tally = Tally::default();
    for i in 0..rounds {
        let own = format!("p{role}-{i}");
        let user = 100 + role as i64;
        // Due at once, so that both processes' claims compete for it.
        insert(
            store,
            account(
                &c,
                user,
                "tiktok",
                &own,
                t0() - chrono::Duration::seconds(1),
            ),
        )
        .await;

        loop {
            let mut row = store
                .find_account(&shared, "counter")
                .await
                .unwrap_or_else(|e| panic!("role {role}: read the counter: {e}"))
                .unwrap_or_else(|| panic!("role {role}: the counter vanished"));
            let n = row.metadata["n"].as_u64().unwrap_or(0);
            row.metadata["n"] = (n + 1).into();
            match store.update_account(&row, &[]).await {
                Ok(_) => break,
                Err(StoreError::VersionConflict) => continue,
                Err(e) => panic!("role {role}: write the counter: {e}"),
            }
        }

        let owner = format!("role{role}-round{i}");
        let claim = store
            .claim_for_refresh(leased_id, &lease(&owner, t0()))
            .await
            .unwrap_or_else(|e| panic!("role {role}: claim_for_refresh: {e}"));
        if let Some(mut row) = claim {
            let n = row.metadata["n"].as_u64().unwrap_or(0);
            row.metadata["n"] = (n + 1).into();
            store
                .update_account_and_release(&row, &owner, &[])
                .await
                .unwrap_or_else(|e| panic!("role {role}: write under the lease: {e}"));
            tally.leased += 1;
        }

        let claimed = store
            .claim_due(t0() + chrono::Duration::days(1), 4, &lease(&owner, t0()))
            .await
            .unwrap_or_else(|e| panic!("role {role}: claim_due: {e}"));
        for mut row in claimed {
            assert_eq!(row.lease_owner.as_deref(), Some(owner.as_str()));
            let n = row.metadata["refreshes"].as_u64().unwrap_or(0);
            row.metadata["refreshes"] = (n + 1).into();
            store
                .update_account_and_release(&row, &owner, &[])
                .await
                .unwrap_or_else(|e| panic!("role {role}: write back a claimed account: {e}"));
            tally.written += 1;
        }

        store
            .append_audit(integrations_core::NewAuditEvent {
                user_id: UserId(user),
                provider: pid("tiktok"),
                provider_account_id: Some(own),
                action: integrations_core::AuditAction::Refreshed,
                outcome: "success".into(),
                at: t0(),
            })
            .await
            .unwrap_or_else(|e| panic!("role {role}: append_audit: {e}"));
    }
    tally
}

/// Opens each of `count` fresh files under `dir` in turn (every process in the same
/// order, so that their first connections, which migrate, meet on each file), and
/// connects an account of its own in each.
async fn start_together(dir: &Path, role: usize, count: usize) {
    let c = cipher();
    for f in 0..count {
        let store = open(&dir.join(format!("fresh{f}.db"))).await;
        insert(
            &store,
            account(&c, 1, "reddit", &format!("role{role}"), t0()),
        )
        .await;
    }
}

/// Runs this binary's `child` test with `job`.
fn spawn(job: &str) -> Child {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("this test binary: {e}"));
    Command::new(exe)
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(JOB_ENV, job)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start a child: {e}"))
}

/// Waits (bounded) for every child; fails with its output when one failed. Returns
/// their standard outputs.
fn wait_all(children: Vec<Child>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut outputs = Vec::new();
    for mut child in children {
        while child
            .try_wait()
            .unwrap_or_else(|e| panic!("wait: {e}"))
            .is_none()
        {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("a child did not finish within 240 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("output: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "a child failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        outputs.push(stdout);
    }
    outputs
}

fn tally(stdout: &str) -> Tally {
    let numbers: Vec<usize> = stdout
        .lines()
        .find_map(|l| l.split_once(TALLY).map(|(_, n)| n))
        .map(|n| {
            n.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    match numbers[..] {
        [written, leased] => Tally { written, leased },
        _ => panic!("no tally in the child's output:\n{stdout}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// What the processes left in the file: the counter, the writes under the shared row's
/// lease, the accounts each connected, the write-backs of the claimed accounts, the audit
/// events, and no lease.
async fn check_the_file(path: &Path, processes: usize, rounds: usize, tally: Tally) {
    let store = open(path).await;
    let shared = |name: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_account(&pid("reddit"), name)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("no {name} row"))
        }
    };
    let counter = shared("counter").await;
    assert_eq!(
        counter.metadata["n"].as_u64(),
        Some((processes * rounds) as u64),
        "every increment of every process is in the counter: no update was lost"
    );
    let leased = shared("leased").await;
    assert_eq!(
        leased.metadata["n"].as_u64(),
        Some(tally.leased as u64),
        "every write under the lease is there"
    );
    assert!(tally.leased > 0);
    assert_eq!(leased.lease_owner, None);
    let mut refreshes = 0;
    for role in 0..processes {
        let user = UserId(100 + role as i64);
        let accounts = store
            .list_accounts(user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(accounts.len(), rounds, "role {role}'s accounts");
        for a in &accounts {
            assert_eq!(a.lease_owner, None, "no lease left behind");
            refreshes += a.metadata["refreshes"].as_u64().unwrap_or(0) as usize;
        }
        let events = store
            .list_audit(user, rounds * 2)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(events.len(), rounds, "role {role}'s audit events");
    }
    assert_eq!(
        refreshes, tally.written,
        "every write-back of a claimed account is in the file, none twice"
    );
    assert!(
        tally.written >= rounds,
        "the claims found the due accounts: {tally:?}"
    );
}

#[test]
fn a_host_and_a_refresher_process_share_one_file_without_losing_a_write() {
    let dir = TempDir::new();
    let path = dir.0.join("shared.db");
    // The file exists and is migrated before the processes start (a deploy step).
    runtime().block_on(async { drop(open(&path).await) });
    let rounds = 60;
    let children = (0..2)
        .map(|role| spawn(&format!("work;{role};{};{rounds}", path.display())))
        .collect();
    let outputs = wait_all(children);
    let tallies: Vec<Tally> = outputs.iter().map(|o| tally(o)).collect();
    eprintln!("per process: {tallies:?}");
    let total = tallies.iter().fold(Tally::default(), |a, b| Tally {
        written: a.written + b.written,
        leased: a.leased + b.leased,
    });
    runtime().block_on(check_the_file(&path, 2, rounds, total));
}

#[test]
fn processes_starting_together_on_fresh_files_migrate_each_once() {
    let dir = TempDir::new();
    let (processes, files) = (3, 40);
    let children = (0..processes)
        .map(|role| spawn(&format!("start;{role};{};{files}", dir.0.display())))
        .collect();
    wait_all(children);
    runtime().block_on(async {
        for f in 0..files {
            let store = open(&dir.0.join(format!("fresh{f}.db"))).await;
            assert_eq!(
                store.migrate().await.ok(),
                Some(0),
                "file {f} fully migrated"
            );
            let accounts = store
                .list_accounts(UserId(1))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                accounts.len(),
                processes,
                "file {f}: one account per process"
            );
        }
    });
}

/// The other end of the tests above: run with a job by them, in a process of its own.
/// Run on its own (`--ignored`), it does the host-and-refresher job alone on a
/// temporary file and checks it the same way.
#[test]
#[ignore = "started as a child process by the tests of this file"]
fn child() {
    let Ok(job) = std::env::var(JOB_ENV) else {
        let dir = TempDir::new();
        let path = dir.0.join("alone.db");
        runtime().block_on(async {
            let store = open(&path).await;
            let tally = host_and_refresher(&store, 0, 20).await;
            drop(store);
            check_the_file(&path, 1, 20, tally).await;
        });
        return;
    };
    let parts: Vec<&str> = job.split(';').collect();
    let [kind, role, path, count] = parts[..] else {
        panic!("malformed job {job:?}")
    };
    let role: usize = role.parse().unwrap_or_else(|e| panic!("role: {e}"));
    let count: usize = count.parse().unwrap_or_else(|e| panic!("count: {e}"));
    let path = PathBuf::from(path);
    runtime().block_on(async {
        match kind {
            "work" => {
                let store = open(&path).await;
                let t = host_and_refresher(&store, role, count).await;
                println!("{TALLY} {} {}", t.written, t.leased);
            }
            "start" => start_together(&path, role, count).await,
            other => panic!("unknown job {other:?}"),
        }
    });
}
