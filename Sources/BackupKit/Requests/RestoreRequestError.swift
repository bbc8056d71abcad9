import BackupCore

/// Why a restore request could not be created or a request's status read. Callers (the admin API) tell the
/// kinds apart by `kind`, never by the message; the message says what failed, why and what to do, names the
/// object, and holds no secret. A struct, so that kinds can be added without breaking callers.
public struct RestoreRequestError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of refusal. Suggested HTTP answers: `invalidName`, `invalidParts`, `invalidID` 400; `notFound`
    /// 404; `noRunner` 503; `store` 500 (the store could not be read or written: nothing was created).
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The backup's name is not the name of a backup of this store (a path, `..`, another prefix, NUL…).
        public static let invalidName = Kind("invalid name")
        /// `parts` names something that is not a part of a backup, or none.
        public static let invalidParts = Kind("invalid parts")
        /// A request id that cannot be one (StoreObjectName's rule).
        public static let invalidID = Kind("invalid id")
        /// No such backup, or no such request.
        public static let notFound = Kind("not found")
        /// No `restore-job --loop` has written a fresh heartbeat: the request would wait forever.
        public static let noRunner = Kind("no runner")
        /// The store could not be read or written.
        public static let store = Kind("store")
    }

    public let kind: Kind
    public let message: String

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
