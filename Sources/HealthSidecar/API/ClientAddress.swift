import BackupCore
import Foundation

/// Who sent a request, for the API's log lines and its brake: the peer's address, unless the peer is a trusted
/// reverse proxy (TRUSTED_PROXIES), in which case the nearest address of `X-Forwarded-For` that is not itself a
/// trusted proxy. A client cannot name itself: the header is read only from a trusted peer, and from the right
/// (the entries a trusted proxy appended), never its leftmost entry as the client wrote it.
enum ClientAddress {
    static func resolve(peer: String?, forwardedFor: [String], trusted: [IPAddressRange]) -> String {
        guard let peer else { return "unknown" }
        guard !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard isAddress(hop) else {
                // Not an address (garbage, "unknown"): nothing further left can be believed.
                return peer
            }
            if !trusted.contains(where: { $0.contains(hop) }) { return hop }
        }
        return peer
    }

    private static func isAddress(_ text: String) -> Bool {
        !text.contains("/") && IPAddressRange(text) != nil
    }
}
