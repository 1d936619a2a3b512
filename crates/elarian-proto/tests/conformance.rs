//! The crate's `.proto` files must describe the published Elarian wire exactly.
//!
//! `tests/data/elarian-wire.fds.bin` is the published schema (see the README next to it). This test
//! compiles `proto/*.proto` with protox and compares every file, message (nested map entries
//! included), field and enum with the reference. Additions are allowed only when listed in
//! [`KNOWN_EXTENSIONS`] and documented in `docs/protocol.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet,
};

const REFERENCE_FDS: &[u8] = include_bytes!("data/elarian-wire.fds.bin");
const PACKAGE: &str = "com.elarian.hera.proto";

/// Items our schema adds to the published wire, by fully qualified name (messages, enums, and
/// fields as `Message.field`). Each must be described in docs/protocol.md.
const KNOWN_EXTENSIONS: &[&str] = &[
    "com.elarian.hera.proto.DeleteCustomerCommand",
    "com.elarian.hera.proto.AppToServerCommand.delete_customer",
];

fn reference() -> FileDescriptorSet {
    FileDescriptorSet::decode(REFERENCE_FDS).expect("reference descriptor set decodes")
}

fn ours() -> FileDescriptorSet {
    let proto_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let mut files: Vec<String> = std::fs::read_dir(&proto_dir)
        .expect("proto dir is readable")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.ends_with(".proto").then_some(name)
        })
        .collect();
    files.sort();
    protox::compile(&files, [&proto_dir]).unwrap_or_else(|e| panic!("proto files compile: {e:?}"))
}

/// Lists every way `ours` differs from `reference` on the wire, for the files of [`PACKAGE`].
/// Names in `allowed_extras` may exist in `ours` only. An empty list means the schemas agree.
fn differences(
    reference: &FileDescriptorSet,
    ours: &FileDescriptorSet,
    allowed_extras: &[&str],
) -> Vec<String> {
    let mut diffs = Vec::new();
    let ref_files = package_files(reference);
    let our_files = package_files(ours);
    for (name, ref_file) in &ref_files {
        match our_files.get(name) {
            None => diffs.push(format!("file {name}: missing")),
            Some(our_file) => compare_file(ref_file, our_file, allowed_extras, &mut diffs),
        }
    }
    for name in our_files.keys() {
        if !ref_files.contains_key(name) {
            diffs.push(format!("file {name}: not in the published schema"));
        }
    }
    diffs
}

fn package_files(set: &FileDescriptorSet) -> BTreeMap<&str, &FileDescriptorProto> {
    set.file
        .iter()
        .filter(|file| file.package() == PACKAGE)
        .map(|file| (file.name(), file))
        .collect()
}

fn compare_file(
    reference: &FileDescriptorProto,
    ours: &FileDescriptorProto,
    allowed: &[&str],
    diffs: &mut Vec<String>,
) {
    let file = reference.name();
    if reference.syntax() != ours.syntax() {
        diffs.push(format!(
            "file {file}: syntax {:?}, expected {:?}",
            ours.syntax(),
            reference.syntax()
        ));
    }
    let ref_deps: BTreeSet<&String> = reference.dependency.iter().collect();
    let our_deps: BTreeSet<&String> = ours.dependency.iter().collect();
    if ref_deps != our_deps {
        diffs.push(format!(
            "file {file}: imports {our_deps:?}, expected {ref_deps:?}"
        ));
    }
    let scope = format!("{PACKAGE}.");
    compare_messages(
        &scope,
        &reference.message_type,
        &ours.message_type,
        allowed,
        diffs,
    );
    compare_enums(
        &scope,
        &reference.enum_type,
        &ours.enum_type,
        allowed,
        diffs,
    );
}

/// Pairs items by name; reports the missing ones and the extra ones not in `allowed`.
fn pair_by_name<'a, T>(
    scope: &str,
    kind: &str,
    reference: &'a [T],
    ours: &'a [T],
    name: impl Fn(&T) -> &str,
    allowed: &[&str],
    diffs: &mut Vec<String>,
) -> Vec<(String, &'a T, &'a T)> {
    let our_by_name: BTreeMap<&str, &T> = ours.iter().map(|item| (name(item), item)).collect();
    let ref_names: BTreeSet<&str> = reference.iter().map(&name).collect();
    let mut pairs = Vec::new();
    for item in reference {
        let full = format!("{scope}{}", name(item));
        match our_by_name.get(name(item)) {
            Some(our_item) => pairs.push((full, item, *our_item)),
            None => diffs.push(format!("{kind} {full}: missing")),
        }
    }
    for item in ours {
        let full = format!("{scope}{}", name(item));
        if !ref_names.contains(name(item)) && !allowed.contains(&full.as_str()) {
            diffs.push(format!("{kind} {full}: not in the published schema"));
        }
    }
    pairs
}

fn compare_messages(
    scope: &str,
    reference: &[DescriptorProto],
    ours: &[DescriptorProto],
    allowed: &[&str],
    diffs: &mut Vec<String>,
) {
    let pairs = pair_by_name(
        scope,
        "message",
        reference,
        ours,
        DescriptorProto::name,
        allowed,
        diffs,
    );
    for (full, ref_msg, our_msg) in pairs {
        let ref_map_entry = ref_msg.options.as_ref().is_some_and(|o| o.map_entry());
        let our_map_entry = our_msg.options.as_ref().is_some_and(|o| o.map_entry());
        if ref_map_entry != our_map_entry {
            diffs.push(format!(
                "message {full}: map_entry {our_map_entry}, expected {ref_map_entry}"
            ));
        }
        let field_scope = format!("{full}.");
        let fields = pair_by_name(
            &field_scope,
            "field",
            &ref_msg.field,
            &our_msg.field,
            FieldDescriptorProto::name,
            allowed,
            diffs,
        );
        for (field_name, ref_field, our_field) in fields {
            compare_field(&field_name, ref_msg, ref_field, our_msg, our_field, diffs);
        }
        compare_messages(
            &field_scope,
            &ref_msg.nested_type,
            &our_msg.nested_type,
            allowed,
            diffs,
        );
        compare_enums(
            &field_scope,
            &ref_msg.enum_type,
            &our_msg.enum_type,
            allowed,
            diffs,
        );
    }
}

fn oneof_name<'a>(message: &'a DescriptorProto, field: &FieldDescriptorProto) -> Option<&'a str> {
    let index = usize::try_from(field.oneof_index?).ok()?;
    message.oneof_decl.get(index).map(|oneof| oneof.name())
}

fn compare_field(
    full: &str,
    ref_msg: &DescriptorProto,
    reference: &FieldDescriptorProto,
    our_msg: &DescriptorProto,
    ours: &FieldDescriptorProto,
    diffs: &mut Vec<String>,
) {
    let mut check = |what: &str, got: String, want: String| {
        if got != want {
            diffs.push(format!("field {full}: {what} {got}, expected {want}"));
        }
    };
    check(
        "number",
        ours.number().to_string(),
        reference.number().to_string(),
    );
    check(
        "type",
        format!("{:?}", ours.r#type.and_then(|t| Type::try_from(t).ok())),
        format!(
            "{:?}",
            reference.r#type.and_then(|t| Type::try_from(t).ok())
        ),
    );
    check(
        "type_name",
        ours.type_name().to_owned(),
        reference.type_name().to_owned(),
    );
    check(
        "label",
        format!("{:?}", ours.label.and_then(|l| Label::try_from(l).ok())),
        format!(
            "{:?}",
            reference.label.and_then(|l| Label::try_from(l).ok())
        ),
    );
    check(
        "oneof",
        format!("{:?}", oneof_name(our_msg, ours)),
        format!("{:?}", oneof_name(ref_msg, reference)),
    );
    check(
        "proto3_optional",
        ours.proto3_optional().to_string(),
        reference.proto3_optional().to_string(),
    );
}

fn compare_enums(
    scope: &str,
    reference: &[EnumDescriptorProto],
    ours: &[EnumDescriptorProto],
    allowed: &[&str],
    diffs: &mut Vec<String>,
) {
    let pairs = pair_by_name(
        scope,
        "enum",
        reference,
        ours,
        EnumDescriptorProto::name,
        allowed,
        diffs,
    );
    for (full, ref_enum, our_enum) in pairs {
        let value_scope = format!("{full}.");
        let values = pair_by_name(
            &value_scope,
            "enum value",
            &ref_enum.value,
            &our_enum.value,
            |value| value.name(),
            allowed,
            diffs,
        );
        for (value_name, ref_value, our_value) in values {
            if ref_value.number() != our_value.number() {
                diffs.push(format!(
                    "enum value {value_name}: number {}, expected {}",
                    our_value.number(),
                    ref_value.number()
                ));
            }
        }
    }
}

fn find_message<'a>(set: &'a mut FileDescriptorSet, name: &str) -> &'a mut DescriptorProto {
    set.file
        .iter_mut()
        .flat_map(|file| file.message_type.iter_mut())
        .find(|message| message.name() == name)
        .unwrap_or_else(|| panic!("message {name} exists"))
}

fn find_field<'a>(
    set: &'a mut FileDescriptorSet,
    message: &str,
    field: &str,
) -> &'a mut FieldDescriptorProto {
    find_message(set, message)
        .field
        .iter_mut()
        .find(|f| f.name() == field)
        .unwrap_or_else(|| panic!("field {message}.{field} exists"))
}

#[test]
fn proto_files_match_the_published_wire() {
    let diffs = differences(&reference(), &ours(), KNOWN_EXTENSIONS);
    assert!(
        diffs.is_empty(),
        "proto/*.proto differ from the published wire:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn every_listed_extension_exists() {
    // A stale allow-list entry would quietly permit a future addition of the same name.
    let ours = ours();
    let delete_customer = ours
        .file
        .iter()
        .flat_map(|file| &file.message_type)
        .find(|message| message.name() == "DeleteCustomerCommand")
        .expect("DeleteCustomerCommand is defined");
    let oneof_fields: Vec<(&str, i32)> = delete_customer
        .field
        .iter()
        .map(|f| (f.name(), f.number()))
        .collect();
    assert_eq!(
        oneof_fields,
        [
            ("customer_id", 1),
            ("customer_number", 2),
            ("secondary_id", 3)
        ]
    );
    let mut ours = ours;
    let entry = find_field(&mut ours, "AppToServerCommand", "delete_customer");
    assert_eq!(entry.number(), 32);
    assert_eq!(
        entry.type_name(),
        ".com.elarian.hera.proto.DeleteCustomerCommand"
    );
}

#[test]
fn an_identical_schema_has_no_differences() {
    assert_eq!(
        differences(&reference(), &reference(), &[]),
        Vec::<String>::new()
    );
}

#[test]
fn mutations_of_the_reference_are_all_reported() {
    let reference = reference();
    let mut mutated = reference.clone();
    find_field(&mut mutated, "AppToServerCommand", "send_message").number = Some(99);
    find_field(&mut mutated, "Cash", "amount").r#type = Some(Type::Float as i32);
    find_field(&mut mutated, "IdentityState", "tags").label = Some(Label::Optional as i32);
    find_field(&mut mutated, "GetCustomerStateCommand", "customer_id").oneof_index = None;
    let payment_status = mutated
        .file
        .iter_mut()
        .flat_map(|file| file.enum_type.iter_mut())
        .find(|e| e.name() == "PaymentStatus")
        .expect("PaymentStatus exists");
    payment_status
        .value
        .retain(|v| v.name() != "PAYMENT_STATUS_REVERSED");
    // A nested map entry type: its value field changes type.
    let wallets_entry = find_message(&mut mutated, "PaymentState")
        .nested_type
        .iter_mut()
        .find(|m| m.name() == "WalletsEntry")
        .expect("WalletsEntry exists");
    wallets_entry.field[1].r#type = Some(Type::String as i32);
    wallets_entry.field[1].type_name = None;
    find_message(&mut mutated, "Cash")
        .field
        .push(FieldDescriptorProto {
            name: Some("extra".to_owned()),
            number: Some(3),
            r#type: Some(Type::Bool as i32),
            label: Some(Label::Optional as i32),
            ..Default::default()
        });

    let diffs = differences(&reference, &mutated, &[]);
    let expected = [
        "field com.elarian.hera.proto.AppToServerCommand.send_message: number 99, expected 18",
        "field com.elarian.hera.proto.Cash.amount: type Some(Float), expected Some(Double)",
        "field com.elarian.hera.proto.IdentityState.tags: label Some(Optional), expected Some(Repeated)",
        "field com.elarian.hera.proto.GetCustomerStateCommand.customer_id: oneof None, expected Some(\"customer\")",
        "enum value com.elarian.hera.proto.PaymentStatus.PAYMENT_STATUS_REVERSED: missing",
        "field com.elarian.hera.proto.PaymentState.WalletsEntry.value: type Some(String), expected Some(Message)",
        "field com.elarian.hera.proto.PaymentState.WalletsEntry.value: type_name , expected .com.elarian.hera.proto.PaymentBalance",
        "field com.elarian.hera.proto.Cash.extra: not in the published schema",
    ];
    for want in expected {
        assert!(
            diffs.iter().any(|d| d == want),
            "difference not reported: {want}\nreported:\n{}",
            diffs.join("\n")
        );
    }
    assert_eq!(
        diffs.len(),
        expected.len(),
        "unexpected extra differences:\n{}",
        diffs.join("\n")
    );

    // The same addition passes once it is declared as an extension.
    let allowed = differences(&reference, &mutated, &["com.elarian.hera.proto.Cash.extra"]);
    assert_eq!(allowed.len(), expected.len() - 1);
}
