import BackupCore
import COpenSSL

// The OpenSSL primitives age needs: X25519, HKDF-SHA-256, HMAC-SHA-256, scrypt, ChaCha20-Poly1305 and the
// CSPRNG. One final class owns each handle kept beyond a single call and frees it in deinit. Nothing here
// is public: the age types expose only Swift values.

/// Byte sizes fixed by age-encryption.org/v1.
enum AgeSizes {
    static let fileKey = 16
    static let x25519Key = 32
    static let tag = 16
    static let payloadNonce = 16
    static let scryptSalt = 16
    static let headerMAC = 32
    /// Plaintext bytes per STREAM chunk.
    static let chunk = 64 * 1024
    /// Ciphertext bytes per full STREAM chunk.
    static let encryptedChunk = chunk + tag
}

enum AgeCrypto {
    /// `count` bytes from OpenSSL's CSPRNG. A failing CSPRNG leaves nothing safe to do, so it stops the process
    /// rather than encrypting with predictable keys.
    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBytes { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(count)) }
        precondition(ok == 1, "RAND_bytes failed: \(OpenSSLError.drain())")
        return bytes
    }

    /// Overwrites `bytes` with zeros in a way the compiler may not elide. Best effort: copies Swift made
    /// earlier are not reached.
    static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            OPENSSL_cleanse(base, buffer.count)
        }
    }

    /// HKDF-SHA-256 (RFC 5869) with a 32-byte output, as age uses it everywhere. An empty salt is passed as
    /// absent, which HKDF defines as equivalent (a zero-filled key of hash length).
    static func hkdf(ikm: [UInt8], salt: [UInt8], info: String) -> [UInt8] {
        AgeKDFContext().deriveHKDF(ikm: ikm, salt: salt, info: Array(info.utf8), count: 32)
    }

    /// HMAC-SHA-256 of `data` under `key`.
    static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = key.withUnsafeBytes { keyBytes in
            data.withUnsafeBytes { dataBytes in
                mac.withUnsafeMutableBytes { out in
                    HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count),
                         dataBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), dataBytes.count,
                         out.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
                }
            }
        }
        precondition(result != nil && length == 32, "HMAC-SHA-256 failed: \(OpenSSLError.drain())")
        return Array(mac.prefix(32))
    }

    /// scrypt (RFC 7914) with r = 8, p = 1 and a 32-byte output. Needs about 128 × 8 × 2^logN bytes of memory
    /// (256 MiB at age's default 18), which is passed to OpenSSL as the limit it checks against.
    static func scrypt(passphrase: [UInt8], salt: [UInt8], logN: Int) throws -> [UInt8] {
        precondition((1...30).contains(logN), "scrypt work factor out of range")
        let n = UInt64(1) << UInt64(logN)
        let r: UInt64 = 8
        let p: UInt64 = 1
        let maxMemory = 128 * r * (n + 2) + 128 * r * p + 1 << 20
        var key = [UInt8](repeating: 0, count: 32)
        let ok = passphrase.withUnsafeBytes { pass in
            salt.withUnsafeBytes { saltBytes in
                key.withUnsafeMutableBytes { out in
                    EVP_PBE_scrypt(pass.baseAddress?.assumingMemoryBound(to: CChar.self), pass.count,
                                   saltBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), saltBytes.count,
                                   n, r, p, maxMemory, out.baseAddress!.assumingMemoryBound(to: UInt8.self), 32)
                }
            }
        }
        guard ok == 1 else {
            // Memory exhaustion is the realistic cause; the passphrase is not part of the text.
            throw ContingencyError.failed("scrypt (work factor \(logN)) failed: \(OpenSSLError.drain())",
                                          hint: "scrypt at this work factor needs about \(maxMemory >> 20) MiB of memory")
        }
        return key
    }
}

/// Owns one `EVP_KDF_CTX` for HKDF. Short-lived: one per derivation.
final class AgeKDFContext {
    private let context: OpaquePointer

    init() {
        guard let kdf = EVP_KDF_fetch(nil, "HKDF", nil) else { fatalError("EVP_KDF_fetch(HKDF) failed: \(OpenSSLError.drain())") }
        defer { EVP_KDF_free(kdf) } // the context keeps its own reference
        guard let context = EVP_KDF_CTX_new(kdf) else { fatalError("EVP_KDF_CTX_new: out of memory") }
        self.context = context
    }

    deinit { EVP_KDF_CTX_free(context) }

    /// HKDF-SHA-256 extract-then-expand. Parameter names are static strings: OSSL_PARAM keeps the pointers.
    func deriveHKDF(ikm: [UInt8], salt: [UInt8], info: [UInt8], count: Int) -> [UInt8] {
        var ikm = ikm, salt = salt, info = info
        var digest = Array("SHA256".utf8CString)
        var output = [UInt8](repeating: 0, count: count)
        let ok = ikm.withUnsafeMutableBytes { ikmBytes in
            salt.withUnsafeMutableBytes { saltBytes in
                info.withUnsafeMutableBytes { infoBytes in
                    digest.withUnsafeMutableBufferPointer { digestName in
                        var params: [OSSL_PARAM] = [
                            OSSL_PARAM_construct_utf8_string(Self.name("digest"), digestName.baseAddress, 0),
                            OSSL_PARAM_construct_octet_string(Self.name("key"), ikmBytes.baseAddress, ikmBytes.count),
                            OSSL_PARAM_construct_octet_string(Self.name("info"), infoBytes.baseAddress, infoBytes.count),
                        ]
                        if saltBytes.count > 0 {
                            params.append(OSSL_PARAM_construct_octet_string(Self.name("salt"), saltBytes.baseAddress, saltBytes.count))
                        }
                        params.append(OSSL_PARAM_construct_end())
                        return output.withUnsafeMutableBytes { out in
                            EVP_KDF_derive(context, out.baseAddress!.assumingMemoryBound(to: UInt8.self), count, &params)
                        }
                    }
                }
            }
        }
        precondition(ok == 1, "HKDF-SHA-256 failed: \(OpenSSLError.drain())")
        AgeCrypto.wipe(&ikm)
        return output
    }

    private static func name(_ text: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

/// Owns one `EVP_PKEY` holding an X25519 key: a private key (whose public half OpenSSL derives) or a peer's
/// public key.
final class AgeX25519Key {
    fileprivate let key: OpaquePointer

    /// A private key from its 32 raw bytes (clamped by X25519 itself, as RFC 7748 specifies).
    init(privateKey bytes: [UInt8]) {
        precondition(bytes.count == AgeSizes.x25519Key, "an X25519 private key is 32 bytes")
        let key = bytes.withUnsafeBytes {
            EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count)
        }
        guard let key else { fatalError("EVP_PKEY_new_raw_private_key(X25519) failed: \(OpenSSLError.drain())") }
        self.key = key
    }

    /// A public key from its 32 raw bytes (any 32 bytes are accepted, as by X25519).
    init(publicKey bytes: [UInt8]) {
        precondition(bytes.count == AgeSizes.x25519Key, "an X25519 public key is 32 bytes")
        let key = bytes.withUnsafeBytes {
            EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count)
        }
        guard let key else { fatalError("EVP_PKEY_new_raw_public_key(X25519) failed: \(OpenSSLError.drain())") }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    /// The 32-byte public key, X25519(private, basepoint) for a private key.
    var publicKeyBytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: AgeSizes.x25519Key)
        var length = bytes.count
        let ok = bytes.withUnsafeMutableBytes {
            EVP_PKEY_get_raw_public_key(key, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
        }
        precondition(ok == 1 && length == AgeSizes.x25519Key, "EVP_PKEY_get_raw_public_key failed: \(OpenSSLError.drain())")
        return bytes
    }

    /// X25519(self, peer), or nil when the result is all zeros (a low-order peer point), which age requires
    /// to abort on. OpenSSL refuses that case itself; the explicit check keeps the contract independent of it.
    func sharedSecret(with peer: AgeX25519Key) -> [UInt8]? {
        let context = AgeDeriveContext(privateKey: self)
        guard var secret = context.derive(peer: peer) else { return nil }
        if secret.allSatisfy({ $0 == 0 }) {
            AgeCrypto.wipe(&secret)
            return nil
        }
        return secret
    }
}

/// Owns one `EVP_PKEY_CTX` for a single X25519 derivation.
final class AgeDeriveContext {
    private let context: OpaquePointer

    init(privateKey: AgeX25519Key) {
        guard let context = EVP_PKEY_CTX_new(privateKey.key, nil) else { fatalError("EVP_PKEY_CTX_new: out of memory") }
        self.context = context
    }

    deinit { EVP_PKEY_CTX_free(context) }

    /// The raw shared secret, or nil when OpenSSL refuses the derivation (a low-order peer point).
    func derive(peer: AgeX25519Key) -> [UInt8]? {
        guard EVP_PKEY_derive_init(context) == 1, EVP_PKEY_derive_set_peer(context, peer.key) == 1 else {
            _ = OpenSSLError.drain()
            return nil
        }
        var secret = [UInt8](repeating: 0, count: AgeSizes.x25519Key)
        var length = secret.count
        let ok = secret.withUnsafeMutableBytes {
            EVP_PKEY_derive(context, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
        }
        guard ok == 1, length == AgeSizes.x25519Key else {
            _ = OpenSSLError.drain()
            return nil
        }
        return secret
    }
}

/// Owns one `EVP_CIPHER_CTX` doing ChaCha20-Poly1305 (RFC 7539) under one 32-byte key, in one direction.
/// Each call re-initialises the context with the key and a fresh 12-byte nonce; no associated data is used.
final class AgeChaChaPoly {
    private let context: OpaquePointer
    private var key: [UInt8]
    private let encrypting: Bool

    init(key: [UInt8], encrypting: Bool) {
        precondition(key.count == 32, "a ChaCha20-Poly1305 key is 32 bytes")
        guard let context = EVP_CIPHER_CTX_new() else { fatalError("EVP_CIPHER_CTX_new: out of memory") }
        self.context = context
        self.key = key
        self.encrypting = encrypting
        let ok = EVP_CipherInit_ex(context, EVP_chacha20_poly1305(), nil, nil, nil, encrypting ? 1 : 0)
        precondition(ok == 1, "EVP_CipherInit_ex(chacha20-poly1305) failed: \(OpenSSLError.drain())")
    }

    deinit {
        EVP_CIPHER_CTX_free(context) // cleanses OpenSSL's copy of the key
        AgeCrypto.wipe(&key)
    }

    /// Encrypts `plaintext` (at most 2^31 - 1 bytes) into `output`, which must hold plaintext.count + 16
    /// bytes: the ciphertext followed by the tag. Returns the bytes written.
    func seal(_ plaintext: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
        precondition(encrypting && output.count >= plaintext.count + AgeSizes.tag && nonce.count == 12)
        start(nonce: nonce)
        let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var produced: Int32 = 0
        if plaintext.count > 0 {
            let ok = EVP_CipherUpdate(context, out, &produced, plaintext.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                      Int32(plaintext.count))
            precondition(ok == 1 && Int(produced) == plaintext.count, "ChaCha20-Poly1305 encryption failed: \(OpenSSLError.drain())")
        }
        var tail: Int32 = 0
        var ok = EVP_CipherFinal_ex(context, out + Int(produced), &tail)
        precondition(ok == 1 && tail == 0, "ChaCha20-Poly1305 finalisation failed: \(OpenSSLError.drain())")
        ok = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(AgeSizes.tag), out + plaintext.count)
        precondition(ok == 1, "ChaCha20-Poly1305 tag retrieval failed: \(OpenSSLError.drain())")
        return plaintext.count + AgeSizes.tag
    }

    /// Decrypts `sealed` (ciphertext followed by its 16-byte tag) into `output` (at least sealed.count - 16
    /// bytes). Returns the plaintext length, or nil when the tag does not verify or `sealed` is shorter than a
    /// tag; on nil, `output` may hold unauthenticated bytes and is zeroed before returning.
    func open(_ sealed: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        precondition(!encrypting && nonce.count == 12)
        guard sealed.count >= AgeSizes.tag else { return nil }
        let length = sealed.count - AgeSizes.tag
        precondition(output.count >= length)
        start(nonce: nonce)
        let input = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var tag = [UInt8](UnsafeRawBufferPointer(rebasing: sealed[length...]))
        var ok = tag.withUnsafeMutableBytes {
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(AgeSizes.tag), $0.baseAddress)
        }
        precondition(ok == 1, "ChaCha20-Poly1305 tag setup failed: \(OpenSSLError.drain())")
        let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var produced: Int32 = 0
        if length > 0 {
            ok = EVP_CipherUpdate(context, out, &produced, input, Int32(length))
            precondition(ok == 1 && Int(produced) == length, "ChaCha20-Poly1305 decryption failed: \(OpenSSLError.drain())")
        }
        var tail: Int32 = 0
        ok = EVP_CipherFinal_ex(context, out + Int(produced), &tail)
        guard ok == 1 else {
            _ = OpenSSLError.drain()
            if length > 0 { OPENSSL_cleanse(out, length) }
            return nil
        }
        return length
    }

    /// Convenience for the small, whole-buffer seals of stanza bodies (the file key).
    func seal(_ plaintext: [UInt8], nonce: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: plaintext.count + AgeSizes.tag)
        let written = plaintext.withUnsafeBytes { input in
            nonce.withUnsafeBytes { nonceBytes in
                output.withUnsafeMutableBytes { seal(input, nonce: nonceBytes, into: $0) }
            }
        }
        precondition(written == output.count)
        return output
    }

    /// Convenience for opening small stanza bodies; nil when the tag does not verify.
    func open(_ sealed: [UInt8], nonce: [UInt8]) -> [UInt8]? {
        guard sealed.count >= AgeSizes.tag else { return nil }
        var output = [UInt8](repeating: 0, count: sealed.count - AgeSizes.tag)
        let length = sealed.withUnsafeBytes { input in
            nonce.withUnsafeBytes { nonceBytes in
                output.withUnsafeMutableBytes { open(input, nonce: nonceBytes, into: $0) }
            }
        }
        return length == nil ? nil : output
    }

    private func start(nonce: UnsafeRawBufferPointer) {
        let ok = key.withUnsafeBytes { keyBytes in
            EVP_CipherInit_ex(context, nil, nil, keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                              nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), encrypting ? 1 : 0)
        }
        precondition(ok == 1, "EVP_CipherInit_ex failed: \(OpenSSLError.drain())")
    }
}
