/** Watches are re-registered (SetWatches) after a server restart, and missed events delivered. */
public final class FailWatchesRestart {
    public static void main(String[] args) {
        Check.run(args, () -> FailWatches.body(true));
    }
}
