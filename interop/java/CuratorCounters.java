import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.atomic.PromotedToLock;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryNTimes;

/** Curator 5.4 DistributedAtomicLong and SharedCount under concurrent updates from separate sessions. */
public final class CuratorCounters {
    static final int N = 4;
    static final int K = 25;

    public static void main(String[] args) {
        Check.run(args, () -> {
            CuratorFramework[] cs = Check.curators(N);

            Check.step("DistributedAtomicLong: concurrent increments all land, each value once", () -> {
                Set<Long> values = ConcurrentHashMap.newKeySet();
                AtomicInteger dup = new AtomicInteger();
                Check.parallel(N, i -> {
                    DistributedAtomicLong n = new DistributedAtomicLong(cs[i], "/counters/dal", new RetryNTimes(1000, 1),
                            PromotedToLock.builder().lockPath("/counters/dal-lock").retryPolicy(new RetryNTimes(100, 10)).build());
                    for (int k = 0; k < K; k++) {
                        AtomicValue<Long> v = n.increment();
                        Check.that(v.succeeded(), "client %d: increment did not succeed", i);
                        Check.eq(v.preValue() + 1, (long) v.postValue(), "post = pre + 1");
                        if (!values.add(v.postValue())) {
                            dup.incrementAndGet();
                        }
                    }
                });
                Check.eq(0, dup.get(), "increments that returned the same value");
                DistributedAtomicLong n = new DistributedAtomicLong(cs[0], "/counters/dal", new RetryNTimes(10, 10));
                Check.eq((long) (N * K), (long) n.get().postValue(), "final value");
                AtomicValue<Long> cas = n.compareAndSet((long) (N * K), 7L);
                Check.that(cas.succeeded(), "compareAndSet with the current value");
                Check.that(!n.compareAndSet(99L, 8L).succeeded(), "compareAndSet with a stale value succeeded");
                Check.eq(7L, (long) n.get().postValue(), "after compareAndSet");
            });

            Check.step("SharedCount: versioned updates, listeners", () -> {
                AtomicInteger lastSeen = new AtomicInteger(-1);
                SharedCount[] counts = new SharedCount[N];
                for (int i = 0; i < N; i++) {
                    counts[i] = new SharedCount(cs[i], "/counters/shared", 0);
                    counts[i].start();
                }
                counts[0].addListener(new SharedCountListener() {
                    @Override
                    public void countHasChanged(SharedCountReader r, int newCount) {
                        lastSeen.set(newCount);
                    }

                    @Override
                    public void stateChanged(CuratorFramework client, ConnectionState newState) {}
                });
                AtomicInteger conflicts = new AtomicInteger();
                Check.parallel(N, i -> {
                    for (int k = 0; k < K; k++) {
                        while (true) {
                            VersionedValue<Integer> v = counts[i].getVersionedValue();
                            if (counts[i].trySetCount(v, v.getValue() + 1)) {
                                break;
                            }
                            conflicts.incrementAndGet();
                        }
                    }
                });
                Check.log("%d version conflicts retried", conflicts.get());
                Check.await("every SharedCount sees the final value", () -> {
                    for (SharedCount c : counts) {
                        if (c.getCount() != N * K) {
                            return false;
                        }
                    }
                    return true;
                });
                Check.await("the listener saw the final value", () -> lastSeen.get() == N * K);
                VersionedValue<Integer> v = counts[1].getVersionedValue();
                counts[1].setCount(5);
                Check.that(!counts[1].trySetCount(v, 6), "trySetCount with a stale version succeeded");
                Check.await("SharedCount sees setCount", () -> counts[2].getCount() == 5);
                for (SharedCount c : counts) {
                    c.close();
                }
            });
        });
    }
}
