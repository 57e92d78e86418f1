/** The server restarts (same port, same dataDir) while a Curator client holds a lock: everything survives. */
public final class FailLockRestart {
    public static void main(String[] args) {
        Check.run(args, () -> FailLock.body(true));
    }
}
