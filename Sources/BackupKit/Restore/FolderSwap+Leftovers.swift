import Foundation

extension FolderSwap {
    /// Removes what restores that died (killed, or a trap) left staged for `target`: its siblings
    /// `.<name>.restore-<8 hex>` (`stagingFolder`, the .env's staged copy) and, inside a mount point,
    /// `.contingency-incoming-<8 hex>`. Never a `…before-restore-…` folder: that one holds what a swap moved
    /// aside. Call while holding the store's lease, so that no restore of this store is using them. Returns
    /// how many were removed.
    static func removeLeftovers(of target: String) -> Int {
        let fileManager = FileManager.default
        let parent = (target as NSString).deletingLastPathComponent
        let name = (target as NSString).lastPathComponent
        var leftovers = ((try? fileManager.contentsOfDirectory(atPath: parent.isEmpty ? "." : parent)) ?? [])
            .filter { isStaged($0, prefix: ".\(name).restore-") }
            .map { (parent.isEmpty ? "" : parent + "/") + $0 }
        if isMountPoint(target) {
            leftovers += ((try? fileManager.contentsOfDirectory(atPath: target)) ?? [])
                .filter { isStaged($0, prefix: ".contingency-incoming-") }
                .map { "\(target)/\($0)" }
        }
        return leftovers.filter { (try? fileManager.removeItem(atPath: $0)) != nil }.count
    }

    /// `prefix` followed by the 8 lowercase hex digits of a restore's id, and nothing else.
    private static func isStaged(_ entry: String, prefix: String) -> Bool {
        guard entry.hasPrefix(prefix) else { return false }
        let id = entry.utf8.dropFirst(prefix.utf8.count)
        return id.count == 8 && id.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
