import BackupCore
import COpenSSL

/// Decrypts an age v1 file (age-encryption.org/v1) read from another source: files written by
/// `AgeEncryptingSink`, by `age -r/-R/-e -i` (X25519) and by `age -p` (passphrase).
///
/// `init` reads and strictly parses the header, unwraps the file key with the first identity that matches a
/// stanza, verifies the header MAC and reads the payload nonce. `read` then returns plaintext, authenticating
/// each 64 KiB chunk before returning any of its bytes, and reports the end (0) only after a valid final chunk
/// followed by the end of the input. Memory is two fixed buffers of about 64 KiB.
///
/// Every failure that means "wrong key" or "not an intact age file" — no stanza matched, wrong passphrase,
/// malformed or oversized header, scrypt mixed with other stanzas, a work factor above the identity's limit,
/// header MAC mismatch, a chunk failing authentication, truncation, a missing or empty final chunk, data after
/// the final chunk — is a `ContingencyError.key` (exit 12), whose message never contains key material. Errors
/// of the underlying source are passed through unchanged. Plaintext returned before a failure is
/// authenticated but incomplete: the caller must discard it when a later `read` throws.
public final class AgeDecryptingSource: ByteSource {
    private let input: AgeInput
    private let cipher: AgeChaChaPoly
    private let plaintext: UnsafeMutableRawBufferPointer
    private var plainStart = 0
    private var plainEnd = 0
    private var counter: UInt64 = 0
    private var sawFinalChunk = false
    /// Raised after the final chunk's plaintext is handed out (data after the end), or by a failed chunk.
    private var failure: ContingencyError?

    /// The stanza types of the header, in order ("X25519", "scrypt", or others as written).
    public let stanzaTypes: [String]

    /// Plaintext bytes returned so far.
    public private(set) var plaintextCount: Int64 = 0

    /// Reads the header from `source` and prepares decryption with `identities` (tried in order for each
    /// stanza in header order). With `firstChunk`, the payload after the header is read as starting at that
    /// STREAM chunk (`source` then gives the header and jumps to chunk `firstChunk`): random access into a file
    /// at 64 KiB granularity, each chunk still authenticated, including its position.
    public init(identities: [AgeIdentity], source: any ByteSource, firstChunk: UInt64 = 0) throws {
        input = AgeInput(source: source, capacity: AgeSizes.encryptedChunk)
        let header = try AgeHeader.read(from: input)
        stanzaTypes = header.stanzas.map(\.type)

        var fileKey = try Self.unwrap(header: header, identities: identities)
        defer { AgeCrypto.wipe(&fileKey) }
        var macKey = AgeCrypto.hkdf(ikm: fileKey, salt: [], info: "header")
        let mac = AgeCrypto.hmacSHA256(key: macKey, data: header.macInput)
        AgeCrypto.wipe(&macKey)
        let macMatches = mac.withUnsafeBytes { computed in
            header.mac.withUnsafeBytes { CRYPTO_memcmp(computed.baseAddress, $0.baseAddress, AgeSizes.headerMAC) == 0 }
        }
        guard macMatches else { throw AgeFailure.headerMAC() }

        try input.fill(atLeast: AgeSizes.payloadNonce)
        guard input.buffered >= AgeSizes.payloadNonce else {
            throw AgeFailure.invalidHeader("the file ends before the 16-byte payload nonce (truncated)")
        }
        let nonce = Array(UnsafeRawBufferPointer(rebasing: input.bytes[..<AgeSizes.payloadNonce]))
        input.consume(AgeSizes.payloadNonce)
        var payloadKey = AgeCrypto.hkdf(ikm: fileKey, salt: nonce, info: "payload")
        cipher = AgeChaChaPoly(key: payloadKey, encrypting: false)
        AgeCrypto.wipe(&payloadKey)
        plaintext = .allocate(byteCount: AgeSizes.chunk, alignment: 16)
        counter = firstChunk
    }

    /// Where chunk `index` starts in a file whose payload (after the header and nonce) starts at `payloadStart`.
    public static func chunkOffset(_ index: Int64, payloadStart: Int64) -> Int64 {
        payloadStart + index * Int64(AgeSizes.encryptedChunk)
    }

    /// Plaintext bytes per chunk.
    public static let chunkSize = AgeSizes.chunk

    deinit {
        plaintext.initializeMemory(as: UInt8.self, repeating: 0)
        plaintext.deallocate()
    }

    /// Fills `buffer` with authenticated plaintext; 0 only at the verified end of the file (or for an empty
    /// buffer). Throws `ContingencyError.key` when the payload is altered, truncated or has trailing data.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        while plainStart == plainEnd {
            if let failure { throw failure }
            if sawFinalChunk { return 0 }
            do {
                try decryptNextChunk()
            } catch let error as ContingencyError {
                failure = error
                throw error
            }
        }
        let count = min(buffer.count, plainEnd - plainStart)
        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: plaintext[plainStart..<(plainStart + count)]))
        plainStart += count
        plaintextCount += Int64(count)
        return count
    }

    /// Reads, authenticates and decrypts the next chunk into `plaintext`. Like age's reference reader, a full
    /// chunk is first opened as a non-final chunk and, if that fails, as a final one (a file whose size is a
    /// multiple of 64 KiB ends with a full final chunk); a short chunk can only be final.
    private func decryptNextChunk() throws {
        try input.fill(atLeast: AgeSizes.encryptedChunk)
        let offset = input.offset
        let available = min(input.buffered, AgeSizes.encryptedChunk)
        guard available > 0 else {
            throw AgeFailure.payload(counter == 0
                ? "is truncated: it has no chunk at all (byte offset \(offset))"
                : "is truncated: it ends without a final chunk after chunk \(counter - 1) (byte offset \(offset))")
        }
        guard available > AgeSizes.tag || (available == AgeSizes.tag && counter == 0) else {
            throw AgeFailure.payload(available == AgeSizes.tag
                ? "ends with an empty final chunk, which only an empty file may have (chunk \(counter), byte offset \(offset))"
                : "is truncated: chunk \(counter) is shorter than its 16-byte tag (byte offset \(offset))")
        }
        var last = available < AgeSizes.encryptedChunk
        let sealed = UnsafeRawBufferPointer(rebasing: input.bytes[..<available])
        var opened = open(sealed, last: last)
        if opened == nil && !last {
            last = true
            opened = open(sealed, last: true)
        }
        guard let count = opened else {
            throw AgeFailure.payload("failed authentication at chunk \(counter) (byte offset \(offset))")
        }
        input.consume(available)
        counter += 1
        plainStart = 0
        plainEnd = count
        if last {
            sawFinalChunk = true
            try input.fill(atLeast: 1)
            if input.buffered > 0 {
                // Handed out after this chunk's (authenticated) plaintext, as age does.
                failure = AgeFailure.payload("has data after its final chunk (byte offset \(input.offset))")
            }
        }
    }

    private func open(_ sealed: UnsafeRawBufferPointer, last: Bool) -> Int? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { nonce in
            AgeStream.nonce(counter: counter, last: last, into: nonce)
            return cipher.open(sealed, nonce: UnsafeRawBufferPointer(nonce), into: plaintext)
        }
    }

    /// The file key from the first stanza an identity unwraps. A stanza that is addressed to nobody here
    /// (wrong key, wrong passphrase, unknown type) is skipped; a stanza that is invalid for its type (a
    /// low-order share, a work factor above the limit) fails the whole header, as the spec requires.
    private static func unwrap(header: AgeHeader, identities: [AgeIdentity]) throws -> [UInt8] {
        let zeroNonce = [UInt8](repeating: 0, count: 12)
        var triedPassphrase = false
        for stanza in header.stanzas {
            switch stanza.type {
            case "X25519":
                let share = try AgeHeader.x25519Share(of: stanza)
                let shareKey = AgeX25519Key(publicKey: share)
                for identity in identities {
                    guard case .x25519(let secretKey, let publicKey) = identity.kind else { continue }
                    guard var shared = AgeX25519Key(privateKey: secretKey).sharedSecret(with: shareKey) else {
                        throw AgeFailure.invalidHeader("an X25519 stanza's share is a low-order point")
                    }
                    var wrapKey = AgeCrypto.hkdf(ikm: shared, salt: share + publicKey, info: "age-encryption.org/v1/X25519")
                    AgeCrypto.wipe(&shared)
                    let fileKey = AgeChaChaPoly(key: wrapKey, encrypting: false).open(stanza.body, nonce: zeroNonce)
                    AgeCrypto.wipe(&wrapKey)
                    if let fileKey { return fileKey }
                }
            case "scrypt":
                let (salt, workFactor) = try AgeHeader.scryptParameters(of: stanza)
                for identity in identities {
                    guard case .scrypt(let passphrase, let maxWorkFactor) = identity.kind else { continue }
                    guard workFactor <= maxWorkFactor else {
                        throw AgeFailure.invalidHeader(
                            "the scrypt work factor \(workFactor) is above the accepted maximum \(maxWorkFactor)")
                    }
                    triedPassphrase = true
                    var wrapKey = try AgeCrypto.scrypt(
                        passphrase: passphrase, salt: Array("age-encryption.org/v1/scrypt".utf8) + salt, logN: workFactor)
                    let fileKey = AgeChaChaPoly(key: wrapKey, encrypting: false).open(stanza.body, nonce: zeroNonce)
                    AgeCrypto.wipe(&wrapKey)
                    if let fileKey { return fileKey }
                }
            default:
                continue
            }
        }
        throw noMatch(header: header, identities: identities, triedPassphrase: triedPassphrase)
    }

    /// The most specific "no stanza matched" explanation: wrong passphrase, missing passphrase, or no matching key.
    private static func noMatch(header: AgeHeader, identities: [AgeIdentity], triedPassphrase: Bool) -> ContingencyError {
        let types = header.stanzas.map(\.type)
        let keyCount = identities.filter { if case .x25519 = $0.kind { true } else { false } }.count
        if types == ["scrypt"] {
            if triedPassphrase {
                return AgeFailure.noMatch("the passphrase is wrong",
                                          hint: "check the passphrase the backup was encrypted with")
            }
            return AgeFailure.noMatch("the archive is passphrase-encrypted (scrypt) and no passphrase was given",
                                      hint: "give the passphrase the backup was encrypted with")
        }
        let x25519Count = types.filter { $0 == "X25519" }.count
        let detail = "\(x25519Count) X25519 stanza(s), \(keyCount) X25519 identit\(keyCount == 1 ? "y" : "ies") given"
        return AgeFailure.noMatch(detail, hint: "check AGE_IDENTITY_FILE: it must hold the secret key (AGE-SECRET-KEY-1…) "
            + "of one of the public keys the backup was encrypted to")
    }
}
