import Synchronization

/// Remembers what it was shown: `first` is true the first time it sees a value, for at most `limit` values (then
/// false: a flood of addresses neither grows it nor the log).
final class SeenOnce: Sendable {
    private let seen = Mutex(Set<String>())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func first(_ value: String) -> Bool {
        seen.withLock { set in
            guard set.count < limit else { return false }
            return set.insert(value).inserted
        }
    }
}
