/** Watches are re-registered (SetWatches) after a dropped connection, and missed events delivered. */
public final class FailWatchesDrop {
    public static void main(String[] args) {
        Check.run(args, () -> FailWatches.body(false));
    }
}
