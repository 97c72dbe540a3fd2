// Used by shell/bench-collector.sh (--with-debezium): polls the sum of a topic's end offsets
// over all partitions every INTERVAL_MS and prints "<unix seconds> <sum>" each time the sum
// changes (and once at the start, with 0 while the topic does not exist yet), flushed at
// once, until it is killed.
//
// One JVM for the whole run (a fresh kafka-get-offsets.sh per poll costs a JVM start, about
// a second, so 250 ms polls would not be 250 ms apart). Run with the Kafka jars on the
// classpath, in source-file mode:
//
//   java -cp "$KAFKA_HOME/libs/*" shell/lib/bench/EndOffsets.java BOOTSTRAP TOPIC [INTERVAL_MS]

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

public class EndOffsets {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: EndOffsets BOOTSTRAP TOPIC [INTERVAL_MS]");
            System.exit(2);
        }
        String topic = args[1];
        long interval = args.length > 2 ? Long.parseLong(args[2]) : 250;
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        try (Admin admin = Admin.create(p)) {
            List<TopicPartition> parts = null;
            long last = -1;
            while (true) {
                long t0 = System.nanoTime();
                long sum = 0;
                try {
                    if (parts == null) {
                        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames()
                            .get(10, TimeUnit.SECONDS).get(topic);
                        parts = d.partitions().stream()
                            .map(i -> new TopicPartition(topic, i.partition()))
                            .collect(Collectors.toList());
                    }
                    Map<TopicPartition, OffsetSpec> q = new HashMap<>();
                    for (TopicPartition tp : parts) q.put(tp, OffsetSpec.latest());
                    Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> r =
                        admin.listOffsets(q).all().get(10, TimeUnit.SECONDS);
                    for (ListOffsetsResult.ListOffsetsResultInfo i : r.values()) sum += i.offset();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                        System.err.println("EndOffsets: " + e.getCause());
                    }
                    parts = null;
                    sum = Math.max(last, 0);
                }
                if (sum != last) {
                    System.out.printf(java.util.Locale.ROOT, "%.3f %d%n", System.currentTimeMillis() / 1000.0, sum);
                    System.out.flush();
                    last = sum;
                }
                long slept = (System.nanoTime() - t0) / 1_000_000;
                if (slept < interval) Thread.sleep(interval - slept);
            }
        }
    }
}
