import Synchronization

/// Remembers what it was shown: `first` is true the first time it sees a text, for at most `limit` texts (then
/// false: a flood of new texts, peer addresses say, neither grows it nor what it guards, a log).
public final class Once: Sendable {
    private let seen = Mutex(Set<String>())
    public let limit: Int

    public init(limit: Int = .max) { self.limit = limit }

    public func first(_ text: String) -> Bool {
        seen.withLock { set in
            guard set.count < limit || set.contains(text) else { return false }
            return set.insert(text).inserted
        }
    }
}
