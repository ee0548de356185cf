//! The PostgreSQL dedup store on a real server (`ct_testkit::Postgres`;
//! SKIPPED without PostgreSQL unless CI is set): records persist and keep
//! their first location, lookups answer in key order, logs sharing the
//! table stay apart, large batches take one call, and a killed connection
//! is replaced. Leaf hashes are recorded with the dedup records.

use ct_dedup::{spawn_writer, Key, Location, PersistentDedup, PostgresDedup, Record};
use ct_testkit::Postgres;
use tokio_postgres::{Client, NoTls};

fn key(i: u64) -> Key {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k
}

fn at(i: u64) -> Location {
    Location {
        leaf_index: i,
        timestamp: 1_700_000_000_000 + i,
    }
}

/// The leaf hash recorded with key `i` at index `index` (distinct for each).
fn leaf(i: u64, index: u64) -> [u8; 32] {
    let mut h = [0xaa; 32];
    h[..8].copy_from_slice(&i.to_be_bytes());
    h[8..16].copy_from_slice(&index.to_be_bytes());
    h
}

/// Key `i` recorded at `location`.
fn rec(i: u64, location: Location) -> Record {
    Record {
        key: key(i),
        location,
        leaf_hash: leaf(i, location.leaf_index),
    }
}

async fn open(postgres: &Postgres, log: &str) -> PostgresDedup {
    PostgresDedup::connect(&postgres.url(), log).await.unwrap()
}

/// A second, independent connection, as an operator would have.
async fn admin(postgres: &Postgres) -> Client {
    let (client, connection) = tokio_postgres::connect(&postgres.url(), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_new_connection_and_keep_their_first_location() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    {
        let db = PersistentDedup::Postgres(open(&postgres, "log").await);
        let (writer, task) = spawn_writer(db);
        writer.record(vec![rec(1, at(7))]);
        writer.record(vec![rec(1, at(9)), rec(2, at(8))]);
        drop(writer);
        task.await.unwrap();
    }
    // Trust authentication ignores the password; Debug must not show it.
    let url = format!("{} password=hunter2", postgres.url());
    let db = PostgresDedup::connect(&url, "log").await.unwrap();
    assert!(!format!("{db:?}").contains("hunter2"), "{db:?}");
    db.insert(vec![rec(2, at(10)), rec(4, at(11))])
        .await
        .unwrap();
    let found = db
        .lookup(vec![key(4), key(1), key(3), key(2), key(1)])
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![Some(at(11)), Some(at(7)), None, Some(at(8)), Some(at(7))],
        "answers in key order, misses as None, first locations kept"
    );
    assert_eq!(db.lookup(Vec::new()).await.unwrap(), Vec::new());
    // Every entry's leaf hash, the second one of key 1 included (the log
    // holds both entries; dedup only remembers the first).
    for (i, index) in [(1, 7), (1, 9), (2, 8), (2, 10), (4, 11)] {
        assert_eq!(db.leaf_index(leaf(i, index)).await.unwrap(), Some(index));
    }
    assert_eq!(db.leaf_index(leaf(3, 3)).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_sharing_the_table_do_not_see_each_others_keys() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let (a, b) = (open(&postgres, "a").await, open(&postgres, "b").await);
    a.insert(vec![rec(1, at(1))]).await.unwrap();
    b.insert(vec![rec(1, at(2)), rec(2, at(3))]).await.unwrap();
    assert_eq!(
        a.lookup(vec![key(1), key(2)]).await.unwrap(),
        [Some(at(1)), None]
    );
    assert_eq!(
        b.lookup(vec![key(1), key(2)]).await.unwrap(),
        [Some(at(2)), Some(at(3))]
    );
    let rows = admin(&postgres)
        .await
        .query("SELECT log FROM ct_dedup ORDER BY log, key", &[])
        .await
        .unwrap();
    let logs: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(logs, ["a", "b", "b"], "one documented table for every log");
    assert_eq!(a.leaf_index(leaf(1, 1)).await.unwrap(), Some(1));
    assert_eq!(b.leaf_index(leaf(1, 1)).await.unwrap(), None, "log a's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_repeated_in_one_insert_keeps_its_first_location() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let db = open(&postgres, "log").await;
    let records = vec![rec(1, at(1)), rec(2, at(2)), rec(1, at(3))];
    db.insert(records).await.unwrap();
    assert_eq!(
        db.lookup(vec![key(1), key(2)]).await.unwrap(),
        [Some(at(1)), Some(at(2))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_take_one_insert_and_one_lookup() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let db = open(&postgres, "log").await;
    let records: Vec<Record> = (0..10_000).map(|i| rec(i, at(i))).collect();
    db.insert(records).await.unwrap();
    // Every other key is a miss, and the order is not the insertion order.
    let keys: Vec<Key> = (0..20_000).rev().map(key).collect();
    let found = db.lookup(keys).await.unwrap();
    let expected: Vec<Option<Location>> = (0..20_000u64)
        .rev()
        .map(|i| (i < 10_000).then(|| at(i)))
        .collect();
    assert_eq!(found, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_is_replaced_on_the_next_call() {
    let Some(postgres) = Postgres::start().await else {
        return;
    };
    let db = open(&postgres, "log").await;
    db.insert(vec![rec(1, at(1))]).await.unwrap();
    let sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
               WHERE application_name = 'ct-log-dedup'";
    let killed: i64 = admin(&postgres)
        .await
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "the store's one connection was killed");
    // This call may still meet the dead connection; the next must not.
    let _ = db.lookup(vec![key(1)]).await;
    assert_eq!(db.lookup(vec![key(1)]).await.unwrap(), [Some(at(1))]);
    db.insert(vec![rec(2, at(2))]).await.unwrap();
    assert_eq!(db.lookup(vec![key(2)]).await.unwrap(), [Some(at(2))]);
}
