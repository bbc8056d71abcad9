import BackupCore
import COpenSSL
import Foundation

/// An Ed25519 key held by OpenSSL: a private key (it signs, and its public half verifies) or a public key alone
/// (it verifies). Owns one `EVP_PKEY`. Keys are read and written as PEM (PKCS #8 for private keys,
/// SubjectPublicKeyInfo for public ones), the files `openssl genpkey -algorithm ed25519` and
/// `openssl pkey -pubout` make; a public key is also accepted as one line: the base64 body of its PEM.
public final class Ed25519Key: @unchecked Sendable {
    // @unchecked Sendable: the EVP_PKEY is never changed after init, and OpenSSL documents signing and
    // verifying with one key from several threads (each call makes its own EVP_MD_CTX) as safe.
    private let key: OpaquePointer
    /// Whether this key can sign.
    public let isPrivate: Bool

    private init(_ key: OpaquePointer, isPrivate: Bool) {
        self.key = key
        self.isPrivate = isPrivate
    }

    deinit { EVP_PKEY_free(key) }

    /// A new private key from OpenSSL's CSPRNG.
    public static func generate() throws -> Ed25519Key {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else {
            throw ContingencyError.failed("EVP_PKEY_CTX_new_id(ED25519) failed: \(OpenSSLError.drain())")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_keygen(context, &key) == 1, let key else {
            throw ContingencyError.failed("EVP_PKEY_keygen(ED25519) failed: \(OpenSSLError.drain())")
        }
        return Ed25519Key(key, isPrivate: true)
    }

    /// Reads a PEM private key (`-----BEGIN PRIVATE KEY-----`). `source` names the file in errors; the key's
    /// bytes never appear in one.
    public static func privateKey(pem: String, source: String) throws -> Ed25519Key {
        let key = try withMemoryBIO(pem) { PEM_read_bio_PrivateKey($0, nil, nil, nil) }
        guard let key else {
            _ = OpenSSLError.drain()
            throw ContingencyError.key(
                "\(source) is not a PEM private key",
                hint: "make one with backup-job keygen (or openssl genpkey -algorithm ed25519)")
        }
        return try checked(Ed25519Key(key, isPrivate: true), source: source)
    }

    /// Reads a public key: PEM (`-----BEGIN PUBLIC KEY-----`) or the base64 body of one on one line.
    public static func publicKey(_ text: String, source: String) throws -> Ed25519Key {
        var pem = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if !pem.hasPrefix("-----BEGIN") {
            pem = "-----BEGIN PUBLIC KEY-----\n\(pem)\n-----END PUBLIC KEY-----\n"
        }
        guard pem.contains("-----BEGIN PUBLIC KEY-----") else {
            throw ContingencyError.key(
                "\(source) is not a public key (a private key or something else was given)",
                hint: "give the public key backup-job keygen wrote (*.pub.pem), never the private one")
        }
        let key = try withMemoryBIO(pem) { PEM_read_bio_PUBKEY($0, nil, nil, nil) }
        guard let key else {
            _ = OpenSSLError.drain()
            throw ContingencyError.key(
                "\(source) is not a PEM public key", hint: "give the public key backup-job keygen wrote (*.pub.pem)")
        }
        return try checked(Ed25519Key(key, isPrivate: false), source: source)
    }

    private static func checked(_ key: Ed25519Key, source: String) throws -> Ed25519Key {
        guard EVP_PKEY_get_id(key.key) == EVP_PKEY_ED25519 else {
            throw ContingencyError.key(
                "\(source) is not an Ed25519 key", hint: "make one with backup-job keygen (or openssl genpkey -algorithm ed25519)")
        }
        return key
    }

    /// The 32 bytes of the public key.
    public var publicKeyBytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 32)
        var length = 32
        let ok = EVP_PKEY_get_raw_public_key(key, &bytes, &length)
        precondition(ok == 1 && length == 32, "EVP_PKEY_get_raw_public_key failed: \(OpenSSLError.drain())")
        return bytes
    }

    /// A short name for the public key, recorded beside each signature so that an operator can tell which key
    /// signed a backup: the first 16 hex digits of the SHA-256 of its 32 bytes.
    public var keyID: String { String(SHA256.hex(of: publicKeyBytes).prefix(16)) }

    /// The public key as PEM (SubjectPublicKeyInfo).
    public func publicKeyPEM() throws -> String {
        try writePEM { PEM_write_bio_PUBKEY($0, key) }
    }

    /// The private key as unencrypted PKCS #8 PEM, for a file of mode 0600.
    public func privateKeyPEM() throws -> String {
        precondition(isPrivate, "privateKeyPEM of a public key")
        return try writePEM { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
    }

    /// The public key as one line (the base64 body of its PEM), for BACKUP_VERIFY_KEYS in an environment.
    public func publicKeyLine() throws -> String {
        try publicKeyPEM().split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
    }

    /// The 64-byte Ed25519 signature of `message` (PureEdDSA: the message itself, not a digest, is signed).
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        precondition(isPrivate, "sign with a public key")
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let ok = message.withUnsafeBytes { bytes in
            EVP_DigestSignInit(context, nil, nil, nil, key) == 1
                && EVP_DigestSign(
                    context, &signature, &length, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count) == 1
        }
        guard ok, length == 64 else { throw ContingencyError.failed("Ed25519 signing failed: \(OpenSSLError.drain())") }
        return signature
    }

    /// Whether `signature` is this key's signature of `message`. Any malformed input is simply not valid.
    public func verify(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        guard signature.count == 64, let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        let ok = message.withUnsafeBytes { bytes in
            EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1
                && EVP_DigestVerify(
                    context, signature, 64, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count) == 1
        }
        if !ok { _ = OpenSSLError.drain() }
        return ok
    }

    private static func withMemoryBIO<T>(_ text: String, _ body: (OpaquePointer) -> T?) throws -> T? {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { raw -> T? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
                throw ContingencyError.failed("BIO_new_mem_buf failed: \(OpenSSLError.drain())")
            }
            defer { BIO_free(bio) }
            return body(bio)
        }
    }

    private func writePEM(_ write: (OpaquePointer) -> Int32) throws -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw ContingencyError.failed("BIO_new failed: \(OpenSSLError.drain())") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw ContingencyError.failed("writing a PEM key failed: \(OpenSSLError.drain())") }
        var data: UnsafeMutablePointer<CChar>?
        let length = contingency_bio_mem_data(bio, &data)
        guard let data, length > 0 else { throw ContingencyError.failed("writing a PEM key produced nothing") }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }
}
