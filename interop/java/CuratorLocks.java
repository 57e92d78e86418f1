import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreMutex;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;

/**
 * Curator 5.4 locks with concurrent contenders, each on its own CuratorFramework (own session):
 * InterProcessMutex, InterProcessSemaphoreMutex, InterProcessSemaphoreV2, InterProcessReadWriteLock.
 */
public final class CuratorLocks {
    static final int CLIENTS = 5;
    static final int ROUNDS = 12;

    /** Non-atomic read-modify-write, so a broken lock loses updates. */
    static int counter;

    public static void main(String[] args) {
        Check.run(args, () -> {
            CuratorFramework[] cs = Check.curators(CLIENTS);

            Check.step("InterProcessMutex: mutual exclusion under contention", () -> {
                AtomicInteger inside = new AtomicInteger();
                AtomicInteger maxInside = new AtomicInteger();
                cs[0].create().creatingParentsIfNeeded().forPath("/locks/counter", "0".getBytes());
                counter = 0;
                Check.parallel(CLIENTS, i -> {
                    InterProcessMutex m = new InterProcessMutex(cs[i], "/locks/mutex");
                    for (int r = 0; r < ROUNDS; r++) {
                        Check.that(m.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "client %d: acquire timed out", i);
                        try {
                            int now = inside.incrementAndGet();
                            maxInside.accumulateAndGet(now, Math::max);
                            int c = counter;
                            // the znode counter: read, then write back +1, unconditionally
                            int z = Integer.parseInt(new String(cs[i].getData().forPath("/locks/counter")));
                            Thread.yield();
                            cs[i].setData().forPath("/locks/counter", Integer.toString(z + 1).getBytes());
                            counter = c + 1;
                            inside.decrementAndGet();
                        } finally {
                            m.release();
                        }
                    }
                });
                Check.eq(1, maxInside.get(), "most holders at once");
                Check.eq(CLIENTS * ROUNDS, counter, "in-memory counter");
                Check.eq(Integer.toString(CLIENTS * ROUNDS), new String(cs[0].getData().forPath("/locks/counter")),
                        "znode counter");
                Check.eq(0, Check.childCount(cs[0], "/locks/mutex"), "lock nodes left behind");
            });

            Check.step("InterProcessMutex: re-entrancy and ownership", () -> {
                InterProcessMutex m0 = new InterProcessMutex(cs[0], "/locks/reentrant");
                InterProcessMutex m1 = new InterProcessMutex(cs[1], "/locks/reentrant");
                Check.that(m0.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "first acquire");
                Check.that(m0.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "re-entrant acquire");
                Check.that(m0.isAcquiredInThisProcess() && m0.isOwnedByCurrentThread(), "owned");
                Check.eq(1, m0.getParticipantNodes().size(), "one lock node for a re-entrant hold");
                Check.that(!m1.acquire(300, TimeUnit.MILLISECONDS), "another client acquired a held lock");
                m0.release();
                Check.that(!m1.acquire(300, TimeUnit.MILLISECONDS), "another client acquired after one of two releases");
                Thread other = new Thread(() -> {
                    try {
                        m0.release();
                        Check.fail("release from a thread that does not own the lock succeeded");
                    } catch (IllegalMonitorStateException expected) {
                        // right
                    } catch (Exception e) {
                        Check.fail("release from another thread: %s", e);
                    }
                });
                other.start();
                other.join(Check.WAIT_MS);
                m0.release();
                Check.that(m1.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "acquire after the full release");
                m1.release();
            });

            Check.step("InterProcessSemaphoreMutex is not re-entrant", () -> {
                InterProcessSemaphoreMutex s0 = new InterProcessSemaphoreMutex(cs[0], "/locks/semmutex");
                InterProcessSemaphoreMutex s1 = new InterProcessSemaphoreMutex(cs[1], "/locks/semmutex");
                Check.that(s0.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "acquire");
                Check.that(!s0.acquire(300, TimeUnit.MILLISECONDS), "second acquire of a non-re-entrant lock succeeded");
                Check.that(!s1.acquire(300, TimeUnit.MILLISECONDS), "another client acquired a held lock");
                s0.release();
                Check.that(s1.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "acquire after release");
                s1.release();
            });

            Check.step("InterProcessSemaphoreV2: never more than maxLeases holders", () -> {
                final int max = 2;
                AtomicInteger holders = new AtomicInteger();
                AtomicInteger maxHolders = new AtomicInteger();
                AtomicInteger leases = new AtomicInteger();
                Check.parallel(CLIENTS, i -> {
                    InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(cs[i], "/locks/sem", max);
                    for (int r = 0; r < ROUNDS; r++) {
                        Lease lease = sem.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS);
                        Check.that(lease != null, "client %d: lease timed out", i);
                        try {
                            int now = holders.incrementAndGet();
                            maxHolders.accumulateAndGet(now, Math::max);
                            leases.incrementAndGet();
                            Thread.sleep(2);
                            holders.decrementAndGet();
                        } finally {
                            sem.returnLease(lease);
                        }
                    }
                });
                Check.that(maxHolders.get() <= max, "%d holders at once with maxLeases %d", maxHolders.get(), max);
                Check.eq(CLIENTS * ROUNDS, leases.get(), "leases granted");
                InterProcessSemaphoreV2 a = new InterProcessSemaphoreV2(cs[0], "/locks/sem2", 3);
                InterProcessSemaphoreV2 b = new InterProcessSemaphoreV2(cs[1], "/locks/sem2", 3);
                var two = a.acquire(2, Check.WAIT_MS, TimeUnit.MILLISECONDS);
                Check.that(two != null && two.size() == 2, "two leases at once");
                Check.that(b.acquire(2, 300, TimeUnit.MILLISECONDS) == null, "2 more leases of 3 granted while 2 are held");
                Lease one = b.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS);
                Check.that(one != null, "the third lease");
                a.returnAll(two);
                b.returnLease(one);
                Check.eq(0, Check.childCount(cs[0], "/locks/sem2/leases"), "leases left behind");
            });

            Check.step("InterProcessReadWriteLock: writers exclusive, readers shared", () -> {
                AtomicInteger readers = new AtomicInteger();
                AtomicInteger writers = new AtomicInteger();
                AtomicInteger violations = new AtomicInteger();
                AtomicInteger writes = new AtomicInteger();
                Check.parallel(CLIENTS, i -> {
                    InterProcessReadWriteLock rw = new InterProcessReadWriteLock(cs[i], "/locks/rw");
                    for (int r = 0; r < ROUNDS; r++) {
                        boolean write = (i + r) % 3 == 0;
                        InterProcessMutex m = write ? rw.writeLock() : rw.readLock();
                        Check.that(m.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "client %d: rw acquire", i);
                        try {
                            if (write) {
                                if (writers.incrementAndGet() != 1 || readers.get() != 0) {
                                    violations.incrementAndGet();
                                }
                                writes.incrementAndGet();
                                Thread.sleep(2);
                                writers.decrementAndGet();
                            } else {
                                readers.incrementAndGet();
                                if (writers.get() != 0) {
                                    violations.incrementAndGet();
                                }
                                Thread.sleep(2);
                                readers.decrementAndGet();
                            }
                        } finally {
                            m.release();
                        }
                    }
                });
                Check.eq(0, violations.get(), "read/write exclusion violations");
                Check.that(writes.get() > 0, "no write happened");

                InterProcessReadWriteLock a = new InterProcessReadWriteLock(cs[0], "/locks/rw2");
                InterProcessReadWriteLock b = new InterProcessReadWriteLock(cs[1], "/locks/rw2");
                Check.that(a.readLock().acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "read lock");
                Check.that(b.readLock().acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "a second reader is let in");
                Check.that(!b.writeLock().acquire(300, TimeUnit.MILLISECONDS), "a writer got in while reading");
                a.readLock().release();
                b.readLock().release();
                Check.that(a.writeLock().acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "write lock");
                Check.that(a.readLock().acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "the writer may also read (downgrade)");
                Check.that(!b.readLock().acquire(300, TimeUnit.MILLISECONDS), "a reader got in while writing");
                a.readLock().release();
                a.writeLock().release();
                Check.that(b.readLock().acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "read after the writer left");
                b.readLock().release();
            });
        });
    }
}
