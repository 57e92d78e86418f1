import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;

/** Curator 5.4 DistributedBarrier and DistributedDoubleBarrier with members on separate sessions. */
public final class CuratorBarriers {
    static final int N = 4;

    public static void main(String[] args) {
        Check.run(args, () -> {
            CuratorFramework[] cs = Check.curators(N + 1);

            Check.step("DistributedBarrier: nobody passes until the barrier is removed", () -> {
                DistributedBarrier controller = new DistributedBarrier(cs[N], "/barrier/simple");
                controller.setBarrier();
                AtomicInteger passed = new AtomicInteger();
                CountDownLatch waiting = new CountDownLatch(N);
                CountDownLatch done = new CountDownLatch(N);
                AtomicInteger passedEarly = new AtomicInteger();
                AtomicInteger removed = new AtomicInteger();
                for (int i = 0; i < N; i++) {
                    final int idx = i;
                    new Thread(() -> {
                        try {
                            DistributedBarrier b = new DistributedBarrier(cs[idx], "/barrier/simple");
                            waiting.countDown();
                            if (b.waitOnBarrier(Check.WAIT_MS, TimeUnit.MILLISECONDS)) {
                                if (removed.get() == 0) {
                                    passedEarly.incrementAndGet();
                                }
                                passed.incrementAndGet();
                            }
                        } catch (Exception e) {
                            Check.log("member %d: %s", idx, e);
                        } finally {
                            done.countDown();
                        }
                    }).start();
                }
                Check.await("members waiting", waiting);
                // A member that wrongly passes would do so now; give it the chance.
                Thread.sleep(500);
                Check.eq(0, passed.get(), "members that passed a set barrier");
                removed.set(1);
                controller.removeBarrier();
                Check.await("members pass after removal", done);
                Check.eq(0, passedEarly.get(), "members that passed before removal");
                Check.eq(N, passed.get(), "members that passed");
            });

            Check.step("DistributedDoubleBarrier: all enter together, all leave together", () -> {
                AtomicInteger arrived = new AtomicInteger();
                AtomicInteger leaving = new AtomicInteger();
                Check.parallel(N, i -> {
                    DistributedDoubleBarrier b = new DistributedDoubleBarrier(cs[i], "/barrier/double", N);
                    arrived.incrementAndGet();
                    Check.that(b.enter(Check.WAIT_MS, TimeUnit.MILLISECONDS), "member %d: enter timed out", i);
                    Check.eq(N, arrived.get(), "members arrived when member " + i + " entered");
                    leaving.incrementAndGet();
                    Check.that(b.leave(Check.WAIT_MS, TimeUnit.MILLISECONDS), "member %d: leave timed out", i);
                    Check.eq(N, leaving.get(), "members leaving when member " + i + " left");
                });
                Check.eq(0, Check.childCount(cs[0], "/barrier/double"), "barrier nodes left behind");
            });
        });
    }
}
