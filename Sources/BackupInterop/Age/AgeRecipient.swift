import BackupCore

/// Someone an age file is encrypted to: an X25519 public key (`age1…`) or a passphrase (scrypt).
///
/// Descriptions, debug descriptions and mirrors never show a passphrase: `description` is the `age1…` key or
/// "passphrase (scrypt)".
public struct AgeRecipient: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    enum Kind: Sendable, Equatable {
        case x25519(publicKey: [UInt8])
        case scrypt(passphrase: [UInt8], workFactor: Int)
    }

    let kind: Kind

    /// age's default scrypt work factor (log2 N); encrypting with it needs about 256 MiB and a second of CPU.
    public static let defaultWorkFactor = 18
    /// The highest work factor accepted, for encrypting and (by default) for decrypting: age's own limit.
    public static let maximumWorkFactor = 22

    init(kind: Kind) { self.kind = kind }

    /// Parses an X25519 recipient, `age1…` (Bech32, lowercase, HRP "age", 32-byte key). Throws
    /// `ContingencyError.configuration` for anything else.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingWhitespace()
        if trimmed.uppercased().hasPrefix("AGE-SECRET-KEY-") {
            throw ContingencyError.configuration(
                "an age secret key (AGE-SECRET-KEY-1…) was given where a recipient (public key, age1…) belongs",
                hint: "give the public key instead: `age-keygen -y KEYFILE` prints it; keep the secret key out of the backup configuration")
        }
        if trimmed.hasPrefix("age1pq1") {
            throw ContingencyError.configuration(
                "post-quantum age recipients (age1pq1…) are not supported", hint: "use an X25519 recipient (age-keygen without -pq)")
        }
        guard let decoded = try? Bech32.decode(trimmed), decoded.hrp == "age", decoded.data.count == AgeSizes.x25519Key else {
            throw ContingencyError.configuration(
                "\(Self.quotedForError(trimmed)) is not an age X25519 recipient",
                hint: "a recipient is a public key as printed by `age-keygen` (age1 followed by 58 characters)")
        }
        kind = .x25519(publicKey: decoded.data)
    }

    /// A passphrase recipient. Files encrypted to it hold a single scrypt stanza (age forbids mixing it with
    /// other recipients). `workFactor` is log2 of scrypt's N, 1…22; lower than the default only for tests.
    public static func passphrase(_ passphrase: String, workFactor: Int = defaultWorkFactor) throws -> AgeRecipient {
        guard !passphrase.isEmpty else {
            throw ContingencyError.configuration("the age passphrase is empty", hint: "set a non-empty passphrase")
        }
        guard (1...maximumWorkFactor).contains(workFactor) else {
            throw ContingencyError.configuration(
                "scrypt work factor \(workFactor) is out of range", hint: "use 1…\(maximumWorkFactor) (age's default is 18)")
        }
        return AgeRecipient(kind: .scrypt(passphrase: Array(passphrase.utf8), workFactor: workFactor))
    }

    /// Parses a list of X25519 recipients, as in an age recipients file or an environment variable: keys
    /// separated by commas, spaces or newlines; lines whose first non-blank character is `#` are comments, and
    /// so is anything after a `#`. Throws `.configuration` naming the line of a bad entry, or when there is
    /// none. Duplicates are kept once.
    public static func parseList(_ text: String) throws -> [AgeRecipient] {
        var recipients: [AgeRecipient] = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let tokens = content.split { $0 == "," || $0.isWhitespace }
            for token in tokens {
                do {
                    let recipient = try AgeRecipient(parsing: String(token))
                    if !recipients.contains(recipient) { recipients.append(recipient) }
                } catch let error as ContingencyError {
                    throw error.prefixed("recipients line \(lineNumber)")
                }
            }
        }
        guard !recipients.isEmpty else {
            throw ContingencyError.configuration(
                "no age recipients found", hint: "list at least one public key (age1…), separated by commas or newlines")
        }
        return recipients
    }

    /// The `age1…` encoding for an X25519 recipient; nil for a passphrase.
    public var encoded: String? {
        switch kind {
        case .x25519(let publicKey): Bech32.encode(hrp: "age", data: publicKey)
        case .scrypt: nil
        }
    }

    /// Whether this is a passphrase (scrypt) recipient.
    public var isPassphrase: Bool {
        if case .scrypt = kind { return true }
        return false
    }

    public var description: String { encoded ?? "passphrase (scrypt)" }
    public var debugDescription: String { "AgeRecipient(\(description))" }
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }

    /// Shows a mistyped recipient only when it looks like a public key, shortened; anything else might be a
    /// secret pasted into the wrong place.
    private static func quotedForError(_ text: String) -> String {
        guard text.hasPrefix("age1") else { return "the entry (\(text.count) characters)" }
        return "'\(text.prefix(16))…'"
    }
}

/// What can decrypt an age file: an X25519 secret key (`AGE-SECRET-KEY-1…`) or a passphrase.
///
/// Descriptions, debug descriptions and mirrors never show the secret: an X25519 identity is described by its
/// public key, a passphrase as "passphrase (scrypt)".
public struct AgeIdentity: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    enum Kind: Sendable {
        case x25519(secretKey: [UInt8], publicKey: [UInt8])
        case scrypt(passphrase: [UInt8], maxWorkFactor: Int)
    }

    let kind: Kind

    private init(secretKey: [UInt8]) {
        let publicKey = AgeX25519Key(privateKey: secretKey).publicKeyBytes
        kind = .x25519(secretKey: secretKey, publicKey: publicKey)
    }

    private init(kind: Kind) { self.kind = kind }

    /// Parses an X25519 identity, `AGE-SECRET-KEY-1…` (Bech32, uppercase as age-keygen writes it). Throws
    /// `ContingencyError.configuration` without quoting the text.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("AGE-SECRET-KEY-PQ-1") {
            throw ContingencyError.configuration(
                "post-quantum age identities (AGE-SECRET-KEY-PQ-1…) are not supported",
                hint: "use an X25519 key (age-keygen without -pq)")
        }
        guard let decoded = try? Bech32.decode(trimmed), decoded.hrp == "AGE-SECRET-KEY-",
              decoded.data.count == AgeSizes.x25519Key else {
            throw ContingencyError.configuration(
                "the age identity is not an X25519 secret key (AGE-SECRET-KEY-1 followed by 58 characters)",
                hint: "use a key file written by `age-keygen -o FILE`")
        }
        self.init(secretKey: decoded.data)
    }

    /// A passphrase identity; it unwraps scrypt stanzas whose work factor is at most `maxWorkFactor` (files
    /// asking for more are refused before any work, as age does, since each step doubles memory and time).
    /// The limit is clamped to 30 (2^30 × 1 KiB of memory is already beyond any real machine).
    public static func passphrase(_ passphrase: String, maxWorkFactor: Int = AgeRecipient.maximumWorkFactor) -> AgeIdentity {
        AgeIdentity(kind: .scrypt(passphrase: Array(passphrase.utf8), maxWorkFactor: min(maxWorkFactor, 30)))
    }

    /// Parses an identity file as age-keygen writes it: one `AGE-SECRET-KEY-1…` per line, blank lines and
    /// lines starting with `#` ignored. Throws `.configuration` naming the line (never its content), or when
    /// the file holds no key.
    public static func parseFile(_ text: String) throws -> [AgeIdentity] {
        var identities: [AgeIdentity] = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let content = String(line).trimmingWhitespace()
            if content.isEmpty || content.hasPrefix("#") { continue }
            do {
                identities.append(try AgeIdentity(parsing: content))
            } catch let error as ContingencyError {
                throw error.prefixed("identity file line \(lineNumber)")
            }
        }
        guard !identities.isEmpty else {
            throw ContingencyError.configuration(
                "the age identity file holds no secret key", hint: "it should contain a line AGE-SECRET-KEY-1… (see `age-keygen`)")
        }
        return identities
    }

    /// A new random X25519 identity (32 bytes from OpenSSL's CSPRNG).
    public static func generate() -> AgeIdentity {
        AgeIdentity(secretKey: AgeCrypto.randomBytes(AgeSizes.x25519Key))
    }

    /// The secret key, `AGE-SECRET-KEY-1…`, for an X25519 identity; nil for a passphrase. This is secret
    /// material: write it only to a key file.
    public var encoded: String? {
        switch kind {
        case .x25519(let secretKey, _): Bech32.encode(hrp: "AGE-SECRET-KEY-", data: secretKey, uppercase: true)
        case .scrypt: nil
        }
    }

    /// The matching recipient (public key) of an X25519 identity; nil for a passphrase.
    public var recipient: AgeRecipient? {
        switch kind {
        case .x25519(_, let publicKey): AgeRecipient(kind: .x25519(publicKey: publicKey))
        case .scrypt: nil
        }
    }

    public var description: String {
        switch kind {
        case .x25519(_, let publicKey): "X25519 identity for \(Bech32.encode(hrp: "age", data: publicKey))"
        case .scrypt: "passphrase (scrypt)"
        }
    }

    public var debugDescription: String { "AgeIdentity(\(description))" }
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }
}

fileprivate extension String {
    /// The string without leading and trailing spaces, tabs, CR and LF.
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
