//! The broker started by `rtdp_testkit::kafka()` is a real Kafka: topics, idempotent
//! produce, watermarks, committed offsets and transactions all work against it.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use rtdp_testkit::{kafka, wait_until};

#[test]
fn produce_10k_records_to_3_partitions() {
    let k = kafka();
    let topic = k.unique_topic("testkit-produce");
    k.create_topic(&topic, 3);
    assert_eq!(k.end_offsets(&topic), vec![0, 0, 0]);

    let records = (0..10_000u32).map(|i| {
        let key = format!("key-{i}").into_bytes();
        (Some(key), format!("value-{i}").into_bytes(), None)
    });
    k.produce(&topic, records).unwrap();

    let ends = k.end_offsets(&topic);
    assert_eq!(ends.len(), 3);
    assert_eq!(ends.iter().sum::<i64>(), 10_000, "end offsets {ends:?}");
    assert!(
        ends.iter().all(|&e| e > 0),
        "keys spread over partitions: {ends:?}"
    );

    // Explicit partitions are honoured.
    k.produce(&topic, [(None, b"x".to_vec(), Some(2))]).unwrap();
    assert_eq!(k.end_offsets(&topic)[2], ends[2] + 1);

    let all = k.read_all(&topic).unwrap();
    assert_eq!(all.len(), 10_001);
}

#[test]
fn produce_to_missing_partition_fails() {
    let k = kafka();
    let topic = k.unique_topic("testkit-badpart");
    k.create_topic(&topic, 1);
    assert!(k.produce(&topic, [(None, b"x".to_vec(), Some(5))]).is_err());
}

#[test]
fn committed_offsets_of_a_group() {
    let k = kafka();
    let topic = k.unique_topic("testkit-commit");
    k.create_topic(&topic, 2);
    let group = k.unique_topic("testkit-group");
    assert_eq!(k.committed_offsets(&group, &topic), vec![-1, -1]);

    let consumer: BaseConsumer = k
        .client_config()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 1, Offset::Offset(42))
        .unwrap();
    consumer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .unwrap();
    assert_eq!(k.committed_offsets(&group, &topic), vec![-1, 42]);
}

#[test]
fn committed_transaction_is_visible_and_aborted_one_is_not() {
    let k = kafka();
    let topic = k.unique_topic("testkit-txn");
    k.create_topic(&topic, 1);
    let producer: BaseProducer = k
        .client_config()
        .set("transactional.id", k.unique_topic("testkit-txn-id"))
        .create()
        .unwrap();
    let t = Duration::from_secs(30);
    producer.init_transactions(t).unwrap();

    producer.begin_transaction().unwrap();
    for i in 0..3 {
        let v = format!("aborted-{i}");
        producer
            .send(BaseRecord::<(), _>::to(&topic).payload(&v))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(t).unwrap();
    producer.abort_transaction(t).unwrap();

    producer.begin_transaction().unwrap();
    for i in 0..5 {
        let v = format!("committed-{i}");
        producer
            .send(BaseRecord::<(), _>::to(&topic).payload(&v))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.commit_transaction(t).unwrap();

    // 3 aborted + abort marker + 5 committed + commit marker.
    wait_until(Duration::from_secs(10), "high watermark 10", || {
        k.end_offsets(&topic) == vec![10]
    });
    let visible: Vec<String> = k
        .read_all(&topic)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    assert_eq!(
        visible,
        (0..5).map(|i| format!("committed-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(k.read_all_uncommitted(&topic).unwrap().len(), 8);
}

#[tokio::test]
async fn helpers_work_inside_a_tokio_runtime() {
    let k = kafka();
    let topic = k.unique_topic("testkit-async");
    k.create_topic(&topic, 2);
    k.produce(&topic, (0..100).map(|i| (None, vec![i as u8], Some(i % 2))))
        .unwrap();
    assert_eq!(k.end_offsets(&topic), vec![50, 50]);
    k.delete_topic(&topic).unwrap();
}
