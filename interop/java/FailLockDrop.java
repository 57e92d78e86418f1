/** A lock holder's connection is cut (proxy) for 2 s of its 30 s session: everything survives. */
public final class FailLockDrop {
    public static void main(String[] args) {
        Check.run(args, () -> FailLock.body(false));
    }
}
