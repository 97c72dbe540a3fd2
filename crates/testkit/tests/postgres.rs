//! The server started by `rtdp_testkit::postgres()` is a real PostgreSQL 15 with logical
//! decoding: `wal_level = logical`, pgoutput slots and publications work, and a restart
//! keeps committed data and slots.

use std::time::Duration;

use rtdp_testkit::{postgres, wait_until, PgServer};

#[test]
fn wal_level_is_logical_and_version_15() {
    let pg = postgres();
    assert_eq!(
        pg.psql("postgres", "SHOW wal_level").unwrap().trim(),
        "logical"
    );
    let v = pg.psql("postgres", "SHOW server_version_num").unwrap();
    assert!(v.trim().starts_with("15"), "server_version_num {v}");
    assert_eq!(pg.host(), "127.0.0.1");
    assert_eq!(
        pg.url("x"),
        format!("postgresql://postgres@127.0.0.1:{}/x", pg.port())
    );
}

#[test]
fn pgoutput_slot_sees_inserts() {
    let pg = postgres();
    let db = pg.unique_name("testkit_slot");
    pg.create_database(&db).unwrap();
    pg.psql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, name text);
         ALTER TABLE t REPLICA IDENTITY FULL;
         CREATE PUBLICATION p FOR TABLE t;
         SELECT 1 FROM pg_create_logical_replication_slot('s', 'pgoutput');",
    )
    .unwrap();
    pg.psql(
        &db,
        "INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 100) g;
         UPDATE t SET name = 'x' WHERE id <= 10;
         DELETE FROM t WHERE id > 90;",
    )
    .unwrap();
    // synchronous_commit=off: decoding sees a commit once the WAL writer has flushed
    // it (within wal_writer_delay, 200 ms), so poll.
    let count = || -> i64 {
        pg.psql(
            &db,
            "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL, \
             'proto_version', '1', 'publication_names', 'p')",
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap()
    };
    wait_until(Duration::from_secs(10), "decoded changes", || {
        count() >= 120
    });
    let n = count();
    assert!(n >= 120, "{n} changes");
    let ident = pg
        .psql(&db, "SELECT relreplident FROM pg_class WHERE relname = 't'")
        .unwrap();
    assert_eq!(ident.trim(), "f");
    // The slot belongs to this database; drop it so the 10 slots are not used up.
    pg.psql(&db, "SELECT pg_drop_replication_slot('s')")
        .unwrap();
}

#[test]
fn create_database_twice_fails_with_stderr() {
    let pg = postgres();
    let db = pg.unique_name("testkit-dup");
    pg.create_database(&db).unwrap();
    let err = format!("{:#}", pg.create_database(&db).unwrap_err());
    assert!(err.contains("already exists"), "{err}");
    let err = format!("{:#}", pg.psql(&db, "SELECT * FROM nope").unwrap_err());
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn restart_keeps_data_and_slots() {
    let pg = PgServer::start().unwrap();
    let port = pg.port();
    let pid = pg.pid().unwrap();
    pg.psql(
        "postgres",
        "CREATE TABLE k (id int PRIMARY KEY);
         INSERT INTO k SELECT generate_series(1, 1000);
         SELECT 1 FROM pg_create_logical_replication_slot('r', 'pgoutput');",
    )
    .unwrap();
    pg.restart().unwrap();
    assert_eq!(pg.port(), port);
    assert_ne!(pg.pid().unwrap(), pid);
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM k")
            .unwrap()
            .trim(),
        "1000"
    );
    assert_eq!(
        pg.psql("postgres", "SELECT slot_name FROM pg_replication_slots")
            .unwrap()
            .trim(),
        "r"
    );
    // Stopped, it refuses connections; resumed, it answers again.
    pg.stop().unwrap();
    assert!(pg.pid().is_none());
    assert!(pg.psql("postgres", "SELECT 1").is_err());
    pg.resume().unwrap();
    assert_eq!(pg.psql("postgres", "SELECT 1").unwrap().trim(), "1");
    let dir = pg.dir().to_path_buf();
    drop(pg);
    assert!(!dir.exists(), "{} removed on drop", dir.display());
}
