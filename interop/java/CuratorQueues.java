import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.queue.DistributedIdQueue;
import org.apache.curator.framework.recipes.queue.DistributedPriorityQueue;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.queue.SimpleDistributedQueue;
import org.apache.curator.framework.state.ConnectionState;

/** Curator 5.4 queues: DistributedQueue, DistributedIdQueue, DistributedPriorityQueue, SimpleDistributedQueue. */
public final class CuratorQueues {
    static final QueueSerializer<String> STRINGS = new QueueSerializer<>() {
        @Override
        public byte[] serialize(String item) {
            return item.getBytes();
        }

        @Override
        public String deserialize(byte[] bytes) {
            return new String(bytes);
        }
    };

    interface Sink {
        void take(String s) throws Exception;
    }

    static QueueConsumer<String> consumer(Sink sink) {
        return new QueueConsumer<>() {
            @Override
            public void consumeMessage(String message) throws Exception {
                sink.take(message);
            }

            @Override
            public void stateChanged(CuratorFramework client, ConnectionState newState) {}
        };
    }

    public static void main(String[] args) {
        Check.run(args, () -> {
            final int producers = 3;
            final int consumers = 3;
            final int items = 30;
            CuratorFramework[] cs = Check.curators(producers + consumers);

            Check.step("DistributedQueue: every item consumed exactly once", () -> {
                Set<String> got = ConcurrentHashMap.newKeySet();
                AtomicInteger dups = new AtomicInteger();
                CountDownLatch all = new CountDownLatch(producers * items);
                List<DistributedQueue<String>> qs = new ArrayList<>();
                for (int c = 0; c < consumers; c++) {
                    DistributedQueue<String> q = QueueBuilder.builder(cs[producers + c], consumer(s -> {
                        if (!got.add(s)) {
                            dups.incrementAndGet();
                        }
                        all.countDown();
                    }), STRINGS, "/queue/dq").lockPath("/queue/dq-locks").buildQueue();
                    q.start();
                    qs.add(q);
                }
                Check.parallel(producers, p -> {
                    DistributedQueue<String> q = QueueBuilder.builder(cs[p], null, STRINGS, "/queue/dq").buildQueue();
                    q.start();
                    for (int i = 0; i < items; i++) {
                        q.put("p" + p + "-" + i);
                    }
                    q.flushPuts(Check.WAIT_MS, TimeUnit.MILLISECONDS);
                    qs.add(q);
                });
                Check.await("all items consumed", all);
                Check.eq(0, dups.get(), "items consumed twice");
                Check.eq(producers * items, got.size(), "distinct items consumed");
                for (DistributedQueue<String> q : qs) {
                    q.close();
                }
                Check.await("queue drained", () -> {
                    try {
                        return Check.childCount(cs[0], "/queue/dq") == 0;
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
            });

            Check.step("DistributedIdQueue: remove by id", () -> {
                DistributedIdQueue<String> producer = QueueBuilder.builder(cs[0], null, STRINGS, "/queue/idq").buildIdQueue();
                producer.start();
                for (int i = 0; i < 10; i++) {
                    producer.put("item" + i, "id" + i);
                }
                Check.eq(1, producer.remove("id3"), "items removed by id");
                Check.eq(1, producer.remove("id7"), "items removed by id");
                Check.eq(0, producer.remove("nope"), "items removed by an unknown id");
                Set<String> got = ConcurrentHashMap.newKeySet();
                CountDownLatch eight = new CountDownLatch(8);
                DistributedIdQueue<String> q = QueueBuilder.builder(cs[1], consumer(s -> {
                    got.add(s);
                    eight.countDown();
                }), STRINGS, "/queue/idq").buildIdQueue();
                q.start();
                Check.await("8 items consumed", eight);
                Check.that(!got.contains("item3") && !got.contains("item7"), "a removed item was consumed: %s", got);
                Check.eq(8, got.size(), "items consumed");
                q.close();
                producer.close();
            });

            Check.step("DistributedPriorityQueue: lower priority first", () -> {
                DistributedPriorityQueue<String> producer = QueueBuilder.builder(cs[0], null, STRINGS, "/queue/pq")
                        .buildPriorityQueue(0);
                producer.start();
                int[] prios = {5, -3, 9, 0, 2, -7, 4};
                for (int p : prios) {
                    producer.put("prio" + p, p);
                }
                producer.flushPuts(Check.WAIT_MS, TimeUnit.MILLISECONDS);
                List<String> order = Collections.synchronizedList(new ArrayList<>());
                CountDownLatch all = new CountDownLatch(prios.length);
                DistributedPriorityQueue<String> q = QueueBuilder.builder(cs[1], consumer(s -> {
                    order.add(s);
                    all.countDown();
                }), STRINGS, "/queue/pq").buildPriorityQueue(0);
                q.start();
                Check.await("priority items consumed", all);
                Check.eq(List.of("prio-7", "prio-3", "prio0", "prio2", "prio4", "prio5", "prio9"), order, "consumption order");
                q.close();
                producer.close();
            });

            Check.step("SimpleDistributedQueue: FIFO across clients", () -> {
                SimpleDistributedQueue a = new SimpleDistributedQueue(cs[0], "/queue/simple");
                SimpleDistributedQueue b = new SimpleDistributedQueue(cs[1], "/queue/simple");
                Check.that(b.poll() == null, "empty queue polls null");
                for (int i = 0; i < 20; i++) {
                    Check.that(a.offer(("m" + i).getBytes()), "offer");
                }
                for (int i = 0; i < 20; i++) {
                    byte[] m = b.poll(Check.WAIT_MS, TimeUnit.MILLISECONDS);
                    Check.eq("m" + i, m == null ? null : new String(m), "FIFO item " + i);
                }
                Check.that(b.poll() == null, "queue empty at the end");
            });
        });
    }
}
