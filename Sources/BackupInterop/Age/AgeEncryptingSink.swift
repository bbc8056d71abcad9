import BackupCore

/// Encrypts what is written to it into an age v1 file (age-encryption.org/v1) written to another sink, so that
/// the stock `age -d` can decrypt it.
///
/// `init` writes the header and the payload nonce at once; `write` encrypts in 64 KiB STREAM chunks, holding at
/// most one chunk of plaintext; `finish()` writes the final chunk and must be called once at the end, or the
/// file is truncated (decryption then fails). Memory is two fixed 64 KiB buffers whatever the input size.
/// After an error from the next sink the stream is unusable and every later call throws.
public final class AgeEncryptingSink: ByteSink {
    private let next: any ByteSink
    private let cipher: AgeChaChaPoly
    private let plaintext: UnsafeMutableRawBufferPointer
    private let ciphertext: UnsafeMutableRawBufferPointer
    private var buffered = 0
    private var counter: UInt64 = 0
    private var finished = false
    private var failed = false

    /// Plaintext bytes taken so far.
    public private(set) var plaintextCount: Int64 = 0
    /// Bytes written to the next sink so far: header, nonce and sealed chunks.
    public private(set) var encryptedCount: Int64 = 0

    /// Starts an age file for `recipients` and writes its header to `next`.
    ///
    /// Throws `ContingencyError.configuration` for an empty list, or a passphrase recipient combined with any
    /// other (age allows an scrypt stanza only alone); errors of `next` are passed through.
    public init(recipients: [AgeRecipient], next: any ByteSink) throws {
        guard !recipients.isEmpty else {
            throw ContingencyError.configuration("no age recipients given", hint: "give at least one public key (age1…) or a passphrase")
        }
        if recipients.contains(where: \.isPassphrase) && recipients.count > 1 {
            throw ContingencyError.configuration(
                "a passphrase cannot be combined with other age recipients",
                hint: "age files encrypted with a passphrase have exactly one recipient; use either public keys or one passphrase")
        }
        self.next = next

        var fileKey = AgeCrypto.randomBytes(AgeSizes.fileKey)
        defer { AgeCrypto.wipe(&fileKey) }
        let stanzas = try recipients.map { try Self.wrap(fileKey: fileKey, for: $0) }
        var header = AgeHeader.encode(stanzas)
        var macKey = AgeCrypto.hkdf(ikm: fileKey, salt: [], info: "header")
        header += Array(" \(AgeBase64.encode(AgeCrypto.hmacSHA256(key: macKey, data: header)))\n".utf8)
        AgeCrypto.wipe(&macKey)
        let nonce = AgeCrypto.randomBytes(AgeSizes.payloadNonce)
        header += nonce
        var payloadKey = AgeCrypto.hkdf(ikm: fileKey, salt: nonce, info: "payload")
        cipher = AgeChaChaPoly(key: payloadKey, encrypting: true)
        AgeCrypto.wipe(&payloadKey)

        plaintext = .allocate(byteCount: AgeSizes.chunk, alignment: 16)
        ciphertext = .allocate(byteCount: AgeSizes.encryptedChunk, alignment: 16)
        try header.withUnsafeBytes { try send($0) }
    }

    deinit {
        // The plaintext buffer may hold backup content; clear it before giving the memory back.
        plaintext.initializeMemory(as: UInt8.self, repeating: 0)
        plaintext.deallocate()
        ciphertext.deallocate()
    }

    /// Encrypts `bytes`. A full chunk is sealed only once more data arrives, because the last chunk is marked
    /// differently and only `finish()` knows which one is last.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try checkUsable()
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            if buffered == AgeSizes.chunk {
                try seal(UnsafeRawBufferPointer(plaintext), last: false)
                buffered = 0
            }
            if buffered == 0 && remaining > AgeSizes.chunk {
                // More than a chunk in hand: this one is certainly not the last; seal it without copying.
                try seal(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + AgeSizes.chunk)]), last: false)
                index += AgeSizes.chunk
                continue
            }
            let count = min(AgeSizes.chunk - buffered, remaining)
            UnsafeMutableRawBufferPointer(rebasing: plaintext[buffered..<(buffered + count)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + count)]))
            buffered += count
            index += count
        }
        plaintextCount += Int64(bytes.count)
    }

    /// Writes the final chunk (empty only when nothing was written at all). Calling it again does nothing.
    public func finish() throws {
        if finished { return }
        try checkUsable()
        try seal(UnsafeRawBufferPointer(rebasing: plaintext[..<buffered]), last: true)
        buffered = 0
        finished = true
    }

    private func checkUsable() throws {
        if failed {
            throw ContingencyError.failed("the age encryption stream failed earlier and cannot continue")
        }
        if finished {
            throw ContingencyError.failed("the age encryption stream was already finished; nothing more can be written")
        }
    }

    private func seal(_ chunk: UnsafeRawBufferPointer, last: Bool) throws {
        let count = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { nonce in
            AgeStream.nonce(counter: counter, last: last, into: nonce)
            return cipher.seal(chunk, nonce: UnsafeRawBufferPointer(nonce), into: ciphertext)
        }
        counter += 1
        try send(UnsafeRawBufferPointer(rebasing: ciphertext[..<count]))
    }

    private func send(_ bytes: UnsafeRawBufferPointer) throws {
        do {
            try next.write(bytes)
        } catch {
            failed = true
            throw error
        }
        encryptedCount += Int64(bytes.count)
    }

    /// One recipient stanza carrying `fileKey`.
    private static func wrap(fileKey: [UInt8], for recipient: AgeRecipient) throws -> AgeStanza {
        let zeroNonce = [UInt8](repeating: 0, count: 12)
        switch recipient.kind {
        case .x25519(let publicKey):
            // A fresh ephemeral key per stanza and file, as the spec requires.
            let ephemeral = AgeX25519Key(privateKey: AgeCrypto.randomBytes(AgeSizes.x25519Key))
            let share = ephemeral.publicKeyBytes
            guard var shared = ephemeral.sharedSecret(with: AgeX25519Key(publicKey: publicKey)) else {
                throw ContingencyError.configuration(
                    "the age recipient \(recipient) is not a usable X25519 public key (low-order point)",
                    hint: "generate a real key pair with age-keygen")
            }
            var wrapKey = AgeCrypto.hkdf(ikm: shared, salt: share + publicKey, info: "age-encryption.org/v1/X25519")
            let body = AgeChaChaPoly(key: wrapKey, encrypting: true).seal(fileKey, nonce: zeroNonce)
            AgeCrypto.wipe(&shared)
            AgeCrypto.wipe(&wrapKey)
            return AgeStanza(type: "X25519", arguments: [AgeBase64.encode(share)], body: body)
        case .scrypt(let passphrase, let workFactor):
            let salt = AgeCrypto.randomBytes(AgeSizes.scryptSalt)
            var wrapKey = try AgeCrypto.scrypt(
                passphrase: passphrase, salt: Array("age-encryption.org/v1/scrypt".utf8) + salt, logN: workFactor)
            let body = AgeChaChaPoly(key: wrapKey, encrypting: true).seal(fileKey, nonce: zeroNonce)
            AgeCrypto.wipe(&wrapKey)
            return AgeStanza(type: "scrypt", arguments: [AgeBase64.encode(salt), String(workFactor)], body: body)
        }
    }
}

/// The STREAM nonce of age's payload.
enum AgeStream {
    /// The 12-byte nonce of chunk `counter`: an 11-byte big-endian counter, then 1 for the last chunk, else 0.
    /// A 64-bit counter fills the low 8 counter bytes; it cannot wrap (2^64 chunks of 64 KiB).
    static func nonce(counter: UInt64, last: Bool, into nonce: UnsafeMutableBufferPointer<UInt8>) {
        precondition(nonce.count == 12)
        nonce[0] = 0
        nonce[1] = 0
        nonce[2] = 0
        for index in 0..<8 { nonce[3 + index] = UInt8(truncatingIfNeeded: counter >> UInt64(56 - 8 * index)) }
        nonce[11] = last ? 1 : 0
    }
}
