import COpenSSL

/// Compares a presented secret (an API token) with the expected one in time that tells nothing of either: both
/// are reduced to HMAC-SHA-256 codes under a key drawn once per process, and the codes are compared with
/// OpenSSL's `CRYPTO_memcmp`. A plain `==` stops at the first differing byte, and comparing the raw bytes in
/// constant time would still give away the expected length.
public enum SecretComparison {
    private static let key: [UInt8] = {
        var bytes = [UInt8](repeating: 0, count: 32)
        // RAND_bytes fails only when OpenSSL's generator cannot be seeded; no comparison can be trusted then.
        precondition(RAND_bytes(&bytes, 32) == 1, "RAND_bytes failed: \(OpenSSLError.drain())")
        return bytes
    }()

    public static func equal(_ presented: String, _ expected: String) -> Bool {
        let a = HMACSHA256.authenticationCode(key: key, message: Array(presented.utf8))
        let b = HMACSHA256.authenticationCode(key: key, message: Array(expected.utf8))
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, 32) == 0 } }
    }
}
