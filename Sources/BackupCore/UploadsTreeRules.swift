/// What an archive's uploads tree may hold before any of it is written to disk. Paths are bytes relative to the
/// uploads root (`a/b.png`; the root itself is empty): file names need not be valid UTF-8.
///
/// The rules, checked entry by entry in archive order:
/// - the root, when the archive has an entry for it, is a folder (a symlink root would replace the uploads
///   folder with a link, or empty it in the mount-point layout);
/// - no path has a `..` component;
/// - no entry's path goes through a symlink an earlier entry made (a write through a link lands elsewhere);
/// - a symlink's target stays in the tree, unless the operator allows targets outside: relative, with any `..`
///   only at its start, climbing no higher than the root from the link's own folder. `..` after a name is
///   refused because the name may itself be a link (`s/a/..` where `s/a -> ..` climbs out);
/// - a hard link names another entry of the tree, never a symlink (a hard link to a symlink is a copy of the
///   link in another folder, where its relative target means something else).
///
/// With those, every link resolves inside the tree: a link's own folder is a chain of real folders (no entry
/// goes through a link), its leading `..` stay below the root, and every link it then passes through is itself
/// inside.
public struct UploadsTreeRules: Sendable {
    /// Symlink targets may leave the tree (RESTORE_ALLOW_OUTSIDE_SYMLINKS=true).
    public let allowOutsideSymlinks: Bool
    private var symlinks: Set<[UInt8]> = []

    public init(allowOutsideSymlinks: Bool) {
        self.allowOutsideSymlinks = allowOutsideSymlinks
    }

    /// Why an entry is refused.
    public enum Refusal: Error, Equatable, Sendable {
        /// The root entry is not a folder.
        case rootNotFolder
        /// The path has a `..` component.
        case dotDot
        /// The path goes through the symlink at this path, made by an earlier entry.
        case throughSymlink([UInt8])
        /// A symlink whose target leaves the tree.
        case symlinkOutside
        /// A hard link to something not in the tree (or to the root).
        case hardLinkOutside
        /// A hard link to a symlink.
        case hardLinkToSymlink
    }

    /// The kinds of entry the rules tell apart.
    public enum Kind: Sendable {
        case file, directory, symlink(target: [UInt8]), hardlink(target: [UInt8]), other
    }

    /// Checks one entry and records what later entries are checked against. Throws the first rule it breaks.
    public mutating func admit(_ path: [UInt8], _ kind: Kind) throws(Refusal) {
        let parts = Self.components(path)
        if parts.isEmpty {
            guard case .directory = kind else { throw .rootNotFolder }
            return
        }
        if parts.contains(Self.dotDot) { throw .dotDot }
        if let link = throughSymlink(parts) { throw .throughSymlink(link) }
        switch kind {
        case .symlink(let target):
            if !allowOutsideSymlinks && !Self.staysInside(link: parts, target: target) { throw .symlinkOutside }
            symlinks.insert(Self.joined(parts))
        case .hardlink(let target):
            let targetParts = Self.components(target)
            guard !targetParts.isEmpty, !targetParts.contains(Self.dotDot) else { throw .hardLinkOutside }
            if let link = throughSymlink(targetParts) { throw .throughSymlink(link) }
            if !allowOutsideSymlinks && symlinks.contains(Self.joined(targetParts)) { throw .hardLinkToSymlink }
            symlinks.remove(Self.joined(parts))
        case .file, .directory, .other:
            // An entry at a symlink's own path replaces the link (libarchive removes it first).
            symlinks.remove(Self.joined(parts))
        }
    }

    /// Whether the symlink at `link` (its path's components) with `target` resolves inside the tree.
    public static func staysInside(link: [[UInt8]], target: [UInt8]) -> Bool {
        guard !target.isEmpty, target.first != slash else { return false }
        var depth = link.count - 1  // the link's own folder
        var climbing = true
        for part in components(target) {
            if part == dotDot {
                guard climbing else { return false }
                depth -= 1
                if depth < 0 { return false }
            } else {
                climbing = false
                depth += 1
            }
        }
        return true
    }

    /// The first proper prefix of `parts` that is a recorded symlink.
    private func throughSymlink(_ parts: [[UInt8]]) -> [UInt8]? {
        guard !symlinks.isEmpty, parts.count > 1 else { return nil }
        for end in 1..<parts.count {
            let prefix = Self.joined(parts[0..<end])
            if symlinks.contains(prefix) { return prefix }
        }
        return nil
    }

    static let slash: UInt8 = 0x2F
    static let dot: UInt8 = 0x2E
    static let dotDot: [UInt8] = [0x2E, 0x2E]

    /// Components, without empty ones and without `.`.
    static func components(_ path: [UInt8]) -> [[UInt8]] {
        path.split(separator: slash, omittingEmptySubsequences: true).map(Array.init).filter { $0 != [dot] }
    }

    static func joined(_ parts: some Collection<[UInt8]>) -> [UInt8] { Array(parts.joined(separator: [slash])) }
}
