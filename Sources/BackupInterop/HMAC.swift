import COpenSSL

/// HMAC-SHA-256 (RFC 2104 over SHA-256) through OpenSSL's one-shot `HMAC()`, which OpenSSL 3 keeps
/// undeprecated (it is `EVP_Q_mac` underneath); the deprecated `HMAC_CTX` calls are not used.
public enum HMACSHA256 {
    /// The 32-byte authentication code of `message` under `key`. Keys of any length are accepted.
    public static func authenticationCode(key: [UInt8], message: [UInt8]) -> [UInt8] {
        guard let keyLength = Int32(exactly: key.count) else {
            preconditionFailure("HMAC key of \(key.count) bytes is longer than OpenSSL accepts")
        }
        // An empty array may have no address, and a null key means "no key" to OpenSSL rather than the empty
        // key, so empty inputs are handed over as a one-byte buffer with the length still 0.
        let keyBuffer = key.isEmpty ? [0] : key
        let messageBuffer = message.isEmpty ? [0] : message
        var code = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = keyBuffer.withUnsafeBytes { keyBytes in
            messageBuffer.withUnsafeBufferPointer { messageBytes in
                code.withUnsafeMutableBufferPointer { out in
                    HMAC(
                        EVP_sha256(), keyBytes.baseAddress, keyLength, messageBytes.baseAddress, message.count,
                        out.baseAddress, &length)
                }
            }
        }
        // HMAC() fails only when OpenSSL cannot allocate or fetch SHA-256; nothing sensible can go on then.
        precondition(result != nil, "HMAC(sha256) failed: \(OpenSSLError.drain())")
        return Array(code.prefix(Int(length)))
    }
}
