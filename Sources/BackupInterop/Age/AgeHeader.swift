import BackupCore
import COpenSSL

/// One recipient stanza: `-> type args…` and a binary body.
struct AgeStanza: Sendable, Equatable {
    var type: String
    var arguments: [String]
    var body: [UInt8]

    /// The stanza as it appears in a header: the argument line, then the body in base64 wrapped at 64 columns,
    /// always ending with a line shorter than 64 characters (possibly empty).
    func encoded() -> [UInt8] {
        var out = Array("-> ".utf8)
        out += Array(([type] + arguments).joined(separator: " ").utf8)
        out.append(0x0a)
        let text = Array(AgeBase64.encode(body).utf8)
        var index = 0
        while true {
            let line = text[index..<min(index + 64, text.count)]
            out += line
            out.append(0x0a)
            index += line.count
            if line.count < 64 { break }
        }
        return out
    }
}

/// Failures of a decryption, each turned into the `ContingencyError.key` the operator sees (exit 12). The
/// first words of each message name the category the tests check: "age header is invalid", "no stanza
/// matched", "header MAC", "payload".
enum AgeFailure {
    static let alteredHint = "the file is not an age-encrypted archive, or it was altered or truncated; "
        + "restore another backup or check where this copy came from"

    static func invalidHeader(_ detail: String) -> ContingencyError {
        .key("the archive's age header is invalid: \(detail)", hint: alteredHint)
    }

    static func noMatch(_ detail: String, hint: String) -> ContingencyError {
        .key("the archive is not decryptable with the given identities (no stanza matched): \(detail)", hint: hint)
    }

    static func headerMAC() -> ContingencyError {
        .key("the archive's age header failed authentication (header MAC mismatch): the header was altered",
             hint: alteredHint)
    }

    static func payload(_ detail: String) -> ContingencyError {
        .key("the archive's encrypted payload \(detail): the archive was altered or truncated", hint: alteredHint)
    }
}

/// An age header as read from a file: its stanzas, its MAC, and the exact bytes the MAC covers.
struct AgeHeader {
    static let versionLine = Array("age-encryption.org/v1\n".utf8)
    /// Headers larger than this are refused: real ones are a few hundred bytes per recipient.
    static let maximumSize = 1 << 20

    var stanzas: [AgeStanza]
    var mac: [UInt8]
    /// The header from its first byte up to and including the `---` of the MAC line.
    var macInput: [UInt8]

    /// The header bytes up to and including `---` for `stanzas` (the MAC line's input).
    static func encode(_ stanzas: [AgeStanza]) -> [UInt8] {
        var out = versionLine
        for stanza in stanzas { out += stanza.encoded() }
        out += Array("---".utf8)
        return out
    }

    /// Reads and strictly parses a header (ABNF of age-encryption.org/v1): the version line, one or more
    /// stanzas (arguments of visible ASCII separated by single spaces; bodies in canonical unpadded base64,
    /// full lines of exactly 64 columns, ending with a shorter line), then `--- ` and a 43-character MAC.
    /// Then checks the stanza types this implementation knows (X25519, scrypt) and that an scrypt stanza is
    /// alone. Leaves `input` at the first payload byte.
    static func read(from input: AgeInput) throws -> AgeHeader {
        var all: [UInt8] = []
        func nextLine() throws -> ArraySlice<UInt8> {
            let line: [UInt8]
            switch try input.readLine(maximumLength: 32 * 1024) {
            case .line(let bytes): line = bytes
            case .end: throw AgeFailure.invalidHeader(all.isEmpty && input.buffered == 0 ? "the file is empty" : "the file ends inside the header (truncated)")
            case .tooLong: throw AgeFailure.invalidHeader("a header line is longer than 32 KiB")
            }
            all += line
            all.append(0x0a)
            guard all.count <= maximumSize else { throw AgeFailure.invalidHeader("the header is larger than 1 MiB") }
            return line[...]
        }

        let version = try nextLine()
        guard version.elementsEqual(versionLine.dropLast()) else {
            if version.starts(with: Array("age-encryption.org/".utf8)) {
                throw AgeFailure.invalidHeader("unsupported age format version (only age-encryption.org/v1 is supported)")
            }
            throw AgeFailure.invalidHeader("the file does not start with the age version line")
        }

        var stanzas: [AgeStanza] = []
        while true {
            let line = try nextLine()
            if line.starts(with: Array("---".utf8)) {
                guard line.count == 47, line[line.startIndex + 3] == 0x20,
                      let mac = AgeBase64.decode(line.dropFirst(4)), mac.count == AgeSizes.headerMAC else {
                    throw AgeFailure.invalidHeader("malformed MAC line")
                }
                guard !stanzas.isEmpty else { throw AgeFailure.invalidHeader("the header has no recipient stanza") }
                let macInput = Array(all[..<(all.count - line.count - 1 + 3)])
                let header = AgeHeader(stanzas: stanzas, mac: mac, macInput: macInput)
                try header.checkKnownStanzas()
                return header
            }
            guard line.starts(with: Array("-> ".utf8)) else {
                throw AgeFailure.invalidHeader("expected a stanza (->) or the MAC line (---)")
            }
            let words = line.dropFirst(3).split(separator: 0x20, omittingEmptySubsequences: false)
            guard words.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (33...126).contains($0) } }) else {
                throw AgeFailure.invalidHeader("malformed stanza arguments")
            }
            let strings = words.map { String(decoding: $0, as: UTF8.self) }
            var body: [UInt8] = []
            while true {
                let bodyLine = try nextLine()
                guard bodyLine.count <= 64, let bytes = AgeBase64.decode(bodyLine) else {
                    throw AgeFailure.invalidHeader("malformed stanza body line")
                }
                body += bytes
                if bodyLine.count < 64 { break }
            }
            stanzas.append(AgeStanza(type: strings[0], arguments: Array(strings.dropFirst()), body: body))
        }
    }

    /// The structural rules of the native stanza types, applied whichever identities are given: an X25519
    /// stanza has one argument, a canonical 32-byte share, and a 32-byte body; an scrypt stanza has a 16-byte
    /// salt, a decimal work factor without leading zeros, a 32-byte body, and is the header's only stanza.
    /// Unknown types are left alone (age ignores them).
    private func checkKnownStanzas() throws {
        for stanza in stanzas {
            switch stanza.type {
            case "X25519":
                _ = try Self.x25519Share(of: stanza)
            case "scrypt":
                guard stanzas.count == 1 else {
                    throw AgeFailure.invalidHeader("an scrypt (passphrase) stanza is mixed with other stanzas, which age forbids")
                }
                _ = try Self.scryptParameters(of: stanza)
            default:
                continue
            }
        }
    }

    static func x25519Share(of stanza: AgeStanza) throws -> [UInt8] {
        guard stanza.arguments.count == 1, let share = AgeBase64.decode(Array(stanza.arguments[0].utf8)),
              share.count == AgeSizes.x25519Key else {
            throw AgeFailure.invalidHeader("malformed X25519 stanza arguments")
        }
        guard stanza.body.count == AgeSizes.fileKey + AgeSizes.tag else {
            throw AgeFailure.invalidHeader("an X25519 stanza body is not 32 bytes")
        }
        return share
    }

    static func scryptParameters(of stanza: AgeStanza) throws -> (salt: [UInt8], workFactor: Int) {
        guard stanza.arguments.count == 2, let salt = AgeBase64.decode(Array(stanza.arguments[0].utf8)),
              salt.count == AgeSizes.scryptSalt else {
            throw AgeFailure.invalidHeader("malformed scrypt stanza arguments")
        }
        let digits = Array(stanza.arguments[1].utf8)
        guard let first = digits.first, (0x31...0x39).contains(first), digits.allSatisfy({ (0x30...0x39).contains($0) }),
              digits.count <= 2, let workFactor = Int(stanza.arguments[1]) else {
            throw AgeFailure.invalidHeader("malformed scrypt work factor")
        }
        guard stanza.body.count == AgeSizes.fileKey + AgeSizes.tag else {
            throw AgeFailure.invalidHeader("an scrypt stanza body is not 32 bytes")
        }
        return (salt, workFactor)
    }
}

/// What an age file's header says about how it was encrypted, read without any key.
public struct AgeHeaderSummary: Sendable, Equatable {
    /// The stanza types in header order: "X25519", "scrypt", or other types as written.
    public let stanzaTypes: [String]

    /// Whether the file is passphrase-encrypted (its only stanza is scrypt).
    public var isPassphraseEncrypted: Bool { stanzaTypes == ["scrypt"] }

    /// Reads and strictly checks the header at the start of `source` (consuming it), without a key and
    /// without checking the header MAC (that needs the file key). Throws `ContingencyError.key` for a file that
    /// is not a valid age v1 file.
    public static func read(from source: any ByteSource) throws -> AgeHeaderSummary {
        let input = AgeInput(source: source, capacity: AgeSizes.encryptedChunk)
        return AgeHeaderSummary(stanzaTypes: try AgeHeader.read(from: input).stanzas.map(\.type))
    }
}

/// Buffered reading from a `ByteSource`: lines for the header, then fixed-size chunks for the payload.
/// Owns one allocation of fixed capacity, so memory stays bounded whatever the input.
final class AgeInput {
    private let source: any ByteSource
    private let storage: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// Whether the source has reported its end (it is not read again afterwards).
    private(set) var reachedEnd = false
    /// Bytes consumed so far: the file offset of the first buffered byte.
    private(set) var offset: Int64 = 0

    init(source: any ByteSource, capacity: Int) {
        self.source = source
        storage = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    var buffered: Int { end - start }

    /// The buffered bytes; valid until the next `fill` or `consume`.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[start..<end]) }

    /// Reads until at least `count` bytes (at most the capacity) are buffered or the source ends.
    func fill(atLeast count: Int) throws {
        precondition(count <= storage.count, "AgeInput.fill beyond capacity")
        guard buffered < count else { return }
        if storage.count - start < count {
            if buffered > 0, let base = storage.baseAddress {
                base.copyMemory(from: base + start, byteCount: buffered)
            }
            end = buffered
            start = 0
        }
        while buffered < count && !reachedEnd {
            let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: storage[end...]))
            if n == 0 { reachedEnd = true } else { end += n }
        }
    }

    func consume(_ count: Int) {
        precondition(count <= buffered)
        start += count
        offset += Int64(count)
        if start == end {
            start = 0
            end = 0
        }
    }

    /// The next line without its LF; `.end` when the input ends before an LF; `.tooLong` when no LF comes
    /// within `maximumLength` bytes (which must be below the capacity).
    func readLine(maximumLength: Int) throws -> Line {
        precondition(maximumLength < storage.count, "AgeInput.readLine limit must be below the capacity")
        var searched = 0
        while true {
            let window = bytes
            if let newline = window[searched...].firstIndex(of: 0x0a) {
                guard newline <= maximumLength else { return .tooLong }
                let line = Array(window[..<newline])
                consume(newline + 1)
                return .line(line)
            }
            searched = window.count
            if window.count > maximumLength { return .tooLong }
            if reachedEnd { return .end }
            try fill(atLeast: buffered + 1)
        }
    }

    enum Line {
        case line([UInt8])
        case end
        case tooLong
    }
}
