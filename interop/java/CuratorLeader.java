import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;

/**
 * Curator 5.4 leader election: LeaderLatch and LeaderSelector with contenders on separate
 * sessions. Exactly one leader at a time; takeover when the leader closes or its session dies.
 */
public final class CuratorLeader {
    static final int N = 4;

    static List<LeaderLatch> leaders(List<LeaderLatch> latches) {
        List<LeaderLatch> l = new ArrayList<>();
        for (LeaderLatch x : latches) {
            if (x.hasLeadership()) {
                l.add(x);
            }
        }
        return l;
    }

    public static void main(String[] args) {
        Check.run(args, () -> {
            CuratorFramework[] cs = Check.curators(N);

            Check.step("LeaderLatch: exactly one leader, takeover on close and on session death", () -> {
                List<LeaderLatch> latches = new ArrayList<>();
                for (int i = 0; i < N; i++) {
                    LeaderLatch l = new LeaderLatch(cs[i], "/leader/latch", "p" + i);
                    l.start();
                    latches.add(l);
                }
                Set<String> seen = new HashSet<>();
                boolean killNext = true;
                while (!latches.isEmpty()) {
                    final List<LeaderLatch> live = latches;
                    Check.await("one leader among " + live.size(), () -> leaders(live).size() == 1);
                    LeaderLatch leader = leaders(live).get(0);
                    Check.eq(1, leaders(live).size(), "leaders");
                    for (LeaderLatch l : live) {
                        Check.eq(leader.getId(), l.getLeader().getId(), "leader as seen by " + l.getId());
                    }
                    Check.that(seen.add(leader.getId()), "%s became leader twice", leader.getId());
                    Check.log("leader is %s", leader.getId());
                    latches = new ArrayList<>(live);
                    latches.remove(leader);
                    int idx = Integer.parseInt(leader.getId().substring(1));
                    if (killNext && latches.size() > 0) {
                        Check.killSession(cs[idx]);
                        Check.await("the old leader notices it lost leadership", () -> !leader.hasLeadership());
                        leader.close(); // its latch would otherwise rejoin with the new session
                    } else {
                        leader.close();
                    }
                    killNext = !killNext;
                }
                Check.eq(N, seen.size(), "every contender led once");
            });

            Check.step("LeaderSelector: one leader at a time, all take turns", () -> {
                AtomicInteger leading = new AtomicInteger();
                AtomicInteger overlaps = new AtomicInteger();
                AtomicInteger terms = new AtomicInteger();
                AtomicIntegerArray perClient = new AtomicIntegerArray(N);
                List<LeaderSelector> sels = new ArrayList<>();
                for (int i = 0; i < N; i++) {
                    final int idx = i;
                    LeaderSelector s = new LeaderSelector(cs[i], "/leader/selector", new LeaderSelectorListenerAdapter() {
                        @Override
                        public void takeLeadership(CuratorFramework client) throws Exception {
                            if (leading.incrementAndGet() != 1) {
                                overlaps.incrementAndGet();
                            }
                            terms.incrementAndGet();
                            perClient.incrementAndGet(idx);
                            Thread.sleep(5);
                            leading.decrementAndGet();
                        }
                    });
                    s.autoRequeue();
                    sels.add(s);
                }
                for (LeaderSelector s : sels) {
                    s.start();
                }
                Check.await("every selector led twice", () -> {
                    for (int i = 0; i < N; i++) {
                        if (perClient.get(i) < 2) {
                            return false;
                        }
                    }
                    return true;
                });
                for (LeaderSelector s : sels) {
                    s.close();
                }
                Check.eq(0, overlaps.get(), "terms that overlapped another leader's");
                Check.log("%d terms", terms.get());
            });

            Check.step("LeaderSelector: takeover when the leader's session dies", () -> {
                CuratorFramework[] ks = Check.curators(2);
                CountDownLatch firstLeads = new CountDownLatch(1);
                CountDownLatch firstInterrupted = new CountDownLatch(1);
                CountDownLatch secondLeads = new CountDownLatch(1);
                LeaderSelector first = new LeaderSelector(ks[0], "/leader/takeover", new LeaderSelectorListenerAdapter() {
                    @Override
                    public void takeLeadership(CuratorFramework client) throws Exception {
                        firstLeads.countDown();
                        try {
                            Thread.sleep(10 * Check.WAIT_MS); // hold leadership until taken away
                        } catch (InterruptedException e) {
                            firstInterrupted.countDown();
                            throw e;
                        }
                    }
                });
                first.start();
                Check.await("first selector leads", firstLeads);
                LeaderSelector second = new LeaderSelector(ks[1], "/leader/takeover", new LeaderSelectorListenerAdapter() {
                    @Override
                    public void takeLeadership(CuratorFramework client) {
                        secondLeads.countDown();
                    }
                });
                second.start();
                Check.that(!second.hasLeadership(), "second leads while the first holds");
                Check.killSession(ks[0]);
                Check.await("the first leader is interrupted (connection lost)", firstInterrupted);
                Check.await("the second selector takes over", secondLeads);
                first.close();
                second.close();
            });
        });
    }
}
