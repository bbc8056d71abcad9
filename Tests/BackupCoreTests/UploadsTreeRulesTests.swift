import Testing

@testable import BackupCore

/// The uploads tree's rules, entry by entry, as tables of cases.
struct UploadsTreeRulesTests {
    struct LinkRow: Sendable, CustomTestStringConvertible {
        let link: String
        let target: String
        let inside: Bool
        var testDescription: String { "\(link) -> \(target)" }
    }

    @Test(arguments: [
        LinkRow(link: "l", target: "a.png", inside: true),
        LinkRow(link: "l", target: "./a/b.png", inside: true),
        LinkRow(link: "a/b/l", target: "../../c.png", inside: true),
        LinkRow(link: "a/b/l", target: "../../..", inside: false),
        LinkRow(link: "a/l", target: "..", inside: true),
        LinkRow(link: "l", target: "..", inside: false),
        LinkRow(link: "l", target: "../uploads/x", inside: false),
        LinkRow(link: "l", target: "/etc/passwd", inside: false),
        LinkRow(link: "l", target: "", inside: false),
        LinkRow(link: "a/l", target: "x/../y", inside: false),
        LinkRow(link: "l", target: "s/a/..", inside: false),
        LinkRow(link: "a/b/l", target: "./../c", inside: true),
        LinkRow(link: "a//b/./l", target: "../../c", inside: true),
    ])
    func symlinkTargets(_ row: LinkRow) {
        let parts = UploadsTreeRules.components(Array(row.link.utf8))
        #expect(UploadsTreeRules.staysInside(link: parts, target: Array(row.target.utf8)) == row.inside)
        var rules = UploadsTreeRules(allowOutsideSymlinks: false)
        let admitted = (try? rules.admit(Array(row.link.utf8), .symlink(target: Array(row.target.utf8)))) != nil
        #expect(admitted == row.inside)
        var lenient = UploadsTreeRules(allowOutsideSymlinks: true)
        #expect((try? lenient.admit(Array(row.link.utf8), .symlink(target: Array(row.target.utf8)))) != nil)
    }

    /// Entries in archive order, and the refusal of the last one (nil: all admitted).
    struct SequenceRow: Sendable, CustomTestStringConvertible {
        let name: String
        let entries: [(String, UploadsTreeRules.Kind)]
        let refusal: UploadsTreeRules.Refusal?
        var testDescription: String { name }
    }

    static let sequenceRows: [SequenceRow] = [
        SequenceRow(name: "root folder", entries: [("", .directory)], refusal: nil),
        SequenceRow(name: "root symlink", entries: [("", .symlink(target: Array(".".utf8)))], refusal: .rootNotFolder),
        SequenceRow(name: "root file", entries: [(".", .file)], refusal: .rootNotFolder),
        SequenceRow(name: "dot dot", entries: [("a/../../x", .file)], refusal: .dotDot),
        SequenceRow(
            name: "write through a link", entries: [("l", .symlink(target: Array("a".utf8))), ("l/x", .file)],
            refusal: .throughSymlink(Array("l".utf8))),
        SequenceRow(
            name: "folder through a link", entries: [("d/l", .symlink(target: Array("..".utf8))), ("d/l/x/y", .directory)],
            refusal: .throughSymlink(Array("d/l".utf8))),
        SequenceRow(
            name: "link replaced by a file, then written below", entries: [("l", .symlink(target: Array("a".utf8))), ("l", .directory), ("l/x", .file)],
            refusal: nil),
        SequenceRow(
            name: "hard link through a link", entries: [("l", .symlink(target: Array("a".utf8))), ("h", .hardlink(target: Array("l/x".utf8)))],
            refusal: .throughSymlink(Array("l".utf8))),
        SequenceRow(
            name: "hard link to a link", entries: [("a/b/l", .symlink(target: Array("../../c".utf8))), ("h", .hardlink(target: Array("a/b/l".utf8)))],
            refusal: .hardLinkToSymlink),
        SequenceRow(name: "hard link to the root", entries: [("h", .hardlink(target: []))], refusal: .hardLinkOutside),
        SequenceRow(name: "hard link with ..", entries: [("h", .hardlink(target: Array("../x".utf8)))], refusal: .hardLinkOutside),
        SequenceRow(name: "hard link inside", entries: [("a", .file), ("h", .hardlink(target: Array("a".utf8)))], refusal: nil),
    ]

    @Test(arguments: sequenceRows)
    func entriesInOrder(_ row: SequenceRow) {
        var rules = UploadsTreeRules(allowOutsideSymlinks: false)
        var refusal: UploadsTreeRules.Refusal?
        for (path, kind) in row.entries {
            do {
                try rules.admit(Array(path.utf8), kind)
            } catch {
                refusal = error
                break
            }
        }
        #expect(refusal == row.refusal)
    }

    @Test func nonUTF8NamesAreBytes() throws {
        var rules = UploadsTreeRules(allowOutsideSymlinks: false)
        try rules.admit([0x63, 0xE9], .symlink(target: [0x64, 0xFF]))
        #expect(throws: UploadsTreeRules.Refusal.throughSymlink([0x63, 0xE9])) { try rules.admit([0x63, 0xE9, 0x2F, 0x78], .file) }
    }
}
