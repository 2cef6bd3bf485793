/*
 * kv_dump.c — prints kv files for people: `kv_dump [--no-values] [--hex]
 * FILE...`. The type comes from the file name (filename.h): NNNNNN.log (a
 * WAL: each WriteBatch and its entries), MANIFEST-NNNNNN (each VersionEdit),
 * NNNNNN.sst (kv_dump_table.c), CURRENT. Every checksum is verified on the
 * way.
 *
 * Exit status: 0 when every file is sound, 1 when one is damaged (bad
 * checksum, malformed contents) or cannot be read, 2 on a usage error
 * (bad option, no file, a name that is not a kv file).
 */
#include "kv_dump.h"

#include "blob.h"

#include "dbformat.h"
#include "env.h"
#include "error.h"
#include "filename.h"
#include "version_edit.h"
#include "wal.h"
#include "write_batch.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_SOUND = 0, EXIT_DAMAGED = 1, EXIT_USAGE = 2 };

/* ---- printing ---- */

void kv_dump_appendf(kv_buf *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fputs("kv_dump: out of memory\n", stderr);
        exit(EXIT_DAMAGED);
    }
    kv_buf_append(dst, text, (size_t)n);
    free(text);
}

void kv_dump_append_bytes(kv_buf *dst, kv_slice s, const kv_dump_options *options)
{
    static const char digits[] = "0123456789abcdef";
    if (options->hex) {
        for (size_t i = 0; i < s.size; i++) {
            unsigned char c = (unsigned char)s.data[i];
            kv_buf_append_byte(dst, digits[c >> 4]);
            kv_buf_append_byte(dst, digits[c & 15]);
        }
        return;
    }
    kv_buf_append_byte(dst, '\'');
    for (size_t i = 0; i < s.size; i++) {
        unsigned char c = (unsigned char)s.data[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            kv_buf_append_byte(dst, (char)c);
        } else {
            char esc[4] = {'\\', 'x', digits[c >> 4], digits[c & 15]};
            kv_buf_append(dst, esc, sizeof(esc));
        }
    }
    kv_buf_append_byte(dst, '\'');
}

void kv_dump_append_value(kv_buf *dst, kv_slice value, const kv_dump_options *options)
{
    if (value.size <= KV_DUMP_MAX_VALUE) {
        kv_dump_append_bytes(dst, value, options);
        return;
    }
    kv_dump_append_bytes(dst, kv_slice_make(value.data, KV_DUMP_MAX_VALUE), options);
    kv_dump_appendf(dst, "... (%zu bytes)", value.size);
}

void kv_dump_append_ikey(kv_buf *dst, kv_slice ikey, const kv_dump_options *options)
{
    kv_slice user_key;
    kv_seq seq;
    int type;
    if (!kv_ikey_parse(ikey, &user_key, &seq, &type)) {
        kv_buf_append(dst, "(not an internal key) ", 22);
        kv_dump_append_bytes(dst, ikey, options);
        return;
    }
    kv_dump_append_bytes(dst, user_key, options);
    kv_dump_appendf(dst, " @ %" PRIu64 " : %s", seq, kv_value_type_name((int)type));
}

void kv_dump_flush(kv_buf *dst)
{
    fwrite(dst->data, 1, dst->size, stdout);
    kv_buf_clear(dst);
}

int kv_dump_report(int status)
{
    fflush(stdout);
    fprintf(stderr, "kv_dump: %s: %s\n", kv_strerror(status), kv_errmsg());
    return status;
}

/* ---- log-format files ---- */

typedef struct batch_printer {
    kv_buf *out;
    const kv_dump_options *options;
} batch_printer;

static int print_batch_entry(void *arg, uint32_t cf_id, kv_seq seq, int type, kv_slice key,
                             kv_slice value)
{
    batch_printer *p = arg;
    kv_dump_appendf(p->out, "  @%" PRIu64 " cf %" PRIu32 " ", seq, cf_id);
    switch (type) {
    case KV_TYPE_VALUE:
        kv_buf_append(p->out, "PUT ", 4);
        kv_dump_append_bytes(p->out, key, p->options);
        if (!p->options->no_values) {
            kv_buf_append(p->out, " => ", 4);
            kv_dump_append_value(p->out, value, p->options);
        }
        break;
    case KV_TYPE_BLOB_INDEX:
        kv_buf_append(p->out, "PUT ", 4);
        kv_dump_append_bytes(p->out, key, p->options);
        kv_buf_append(p->out, " => ", 4);
        kv_dump_append_blob_index(p->out, value);
        break;
    case KV_TYPE_DELETION:
        kv_buf_append(p->out, "DELETE ", 7);
        kv_dump_append_bytes(p->out, key, p->options);
        break;
    case KV_TYPE_RANGE_DELETION:
        kv_buf_append(p->out, "DELETE_RANGE [", 14);
        kv_dump_append_bytes(p->out, key, p->options);
        kv_buf_append(p->out, ", ", 2);
        kv_dump_append_bytes(p->out, value, p->options);
        kv_buf_append_byte(p->out, ')');
        break;
    default:
        kv_dump_appendf(p->out, "type %d", type);
    }
    kv_buf_append_byte(p->out, '\n');
    kv_dump_flush(p->out);
    return 0;
}

/* Prints one WAL record: a WriteBatch. A malformed batch is reported and
 * counted, and the dump goes on with the next record (the log framing
 * around it is sound). */
static int print_wal_record(kv_slice record, uint64_t offset, const char *name, kv_buf *out,
                            const kv_dump_options *options)
{
    kv_write_batch batch;
    kv_write_batch_init(&batch);
    int rc = kv_write_batch_set_contents(&batch, record);
    if (rc == 0) {
        kv_dump_appendf(
            out, "offset %" PRIu64 ": sequence %" PRIu64 ", count %" PRIu32 ", %zu bytes\n", offset,
            kv_write_batch_sequence(&batch), kv_write_batch_count(&batch), record.size);
        kv_dump_flush(out);
        batch_printer printer = {out, options};
        rc = kv_write_batch_iterate(&batch, print_batch_entry, &printer);
    }
    if (rc < 0) {
        char *prefix = kv_sprintf("%s: record at offset %" PRIu64, name, offset);
        kv_dump_report(kv_error_wrap(rc, prefix));
        free(prefix);
    }
    kv_write_batch_free(&batch);
    return rc;
}

/* Prints one MANIFEST record: a VersionEdit, one field per line. */
static int print_manifest_record(kv_slice record, uint64_t offset, const char *name, kv_buf *out)
{
    kv_dump_appendf(out, "offset %" PRIu64 ": VersionEdit, %zu bytes\n", offset, record.size);
    kv_dump_flush(out);
    kv_version_edit edit;
    kv_version_edit_init(&edit);
    char *edit_name = kv_sprintf("%s: record at offset %" PRIu64, name, offset);
    int rc = kv_version_edit_decode(&edit, record, edit_name);
    free(edit_name);
    if (rc == 0) {
        kv_buf text = {0};
        kv_version_edit_debug_string(&edit, &text);
        /* Indent each line. */
        size_t start = 0;
        for (size_t i = 0; i < text.size; i++) {
            if (text.data[i] != '\n')
                continue;
            kv_buf_append(out, "  ", 2);
            kv_buf_append(out, text.data + start, i + 1 - start);
            start = i + 1;
        }
        kv_buf_free(&text);
        kv_dump_flush(out);
    } else {
        kv_dump_report(rc);
    }
    kv_version_edit_free(&edit);
    return rc;
}

/* Reads every record of a log-format file (WAL or MANIFEST) and prints it
 * with `print_wal_record` or `print_manifest_record`. */
static int dump_log_file(const char *path, const char *name, bool is_manifest,
                         const kv_dump_options *options)
{
    kv_random *file;
    int rc = kv_env_new_random(kv_env_posix(), path, &file);
    if (rc != 0)
        return kv_dump_report(rc);
    kv_buf out = {0};
    kv_dump_appendf(&out, "%s: %s, %" PRIu64 " bytes\n", name,
                    is_manifest ? "MANIFEST (log of VersionEdits)" : "write-ahead log", file->size);
    kv_dump_flush(&out);

    kv_log_reader *reader = kv_log_reader_create(file, file->size, name);
    kv_buf scratch = {0};
    kv_slice record;
    uint64_t records = 0, bad_records = 0;
    int read_rc;
    while ((read_rc = kv_log_reader_read_record(reader, &record, &scratch)) == 1) {
        uint64_t offset = kv_log_reader_last_record_offset(reader);
        records++;
        int record_rc = is_manifest ? print_manifest_record(record, offset, name, &out)
                                    : print_wal_record(record, offset, name, &out, options);
        if (record_rc < 0) {
            bad_records++;
            rc = record_rc;
        }
    }
    if (read_rc < 0) {
        rc = kv_dump_report(read_rc);
    } else {
        kv_dump_appendf(&out, "%s: %" PRIu64 " record%s", name, records, records == 1 ? "" : "s");
        if (bad_records > 0)
            kv_dump_appendf(&out, ", %" PRIu64 " malformed", bad_records);
        if (kv_log_reader_tail_is_zeros(reader))
            kv_dump_appendf(&out,
                            "; %" PRIu64 " bytes of zeros after the last record (written ahead "
                            "of synced appends, or an append a crash kept from the disk)",
                            kv_log_reader_dropped_tail(reader));
        else if (kv_log_reader_dropped_tail(reader) > 0)
            kv_dump_appendf(&out,
                            "; torn tail of %" PRIu64 " bytes ignored (a crash during an append)",
                            kv_log_reader_dropped_tail(reader));
        kv_buf_append_byte(&out, '\n');
        kv_dump_flush(&out);
    }
    kv_log_reader_destroy(reader);
    kv_random_close(file);
    kv_buf_free(&scratch);
    kv_buf_free(&out);
    return rc;
}

/* ---- CURRENT ---- */

void kv_dump_append_blob_index(kv_buf *dst, kv_slice index)
{
    kv_blob_ref ref;
    if (kv_blob_ref_decode(index, &ref))
        kv_dump_appendf(dst, "blob %06" PRIu64 ".blob offset %" PRIu64 " (%" PRIu32 " bytes)",
                        ref.file, ref.offset, ref.size);
    else
        kv_dump_appendf(dst, "malformed blob index (%zu bytes)", index.size);
}

/* A blob file: the header, then records one after the other, each with its
 * key, value size and checksum checked. */
static int dump_blob_file(const char *path, const char *name, const kv_dump_options *options)
{
    kv_buf contents = {0};
    int rc = kv_env_read_file(kv_env_posix(), path, &contents);
    if (rc != 0)
        return kv_dump_report(rc);
    rc = kv_blob_header_check(kv_buf_slice(&contents), path);
    kv_buf out = {0};
    uint64_t records = 0, offset = KV_BLOB_HEADER_SIZE;
    while (rc == 0 && offset < contents.size) {
        kv_slice rest = kv_slice_make(contents.data + offset, contents.size - offset);
        kv_slice in = kv_slice_make(rest.data + 4, rest.size >= 4 ? rest.size - 4 : 0);
        uint32_t key_len, value_len;
        if (rest.size < 4 || !kv_get_varint32(&in, &key_len) || !kv_get_varint32(&in, &value_len) ||
            (uint64_t)key_len + value_len > in.size) {
            rc = kv_error(KV_CORRUPTION, "%s: truncated blob record at offset %" PRIu64, path,
                          offset);
            break;
        }
        size_t size = (size_t)(in.data - rest.data) + key_len + value_len;
        kv_slice key = kv_slice_make(in.data, key_len), value;
        rc = kv_blob_record_parse(kv_slice_make(rest.data, size), key, path, offset, &value);
        if (rc != 0)
            break;
        kv_dump_appendf(&out, "  offset %" PRIu64 ": ", offset);
        kv_dump_append_bytes(&out, key, options);
        if (!options->no_values) {
            kv_buf_append(&out, " => ", 4);
            kv_dump_append_value(&out, value, options);
        }
        kv_buf_append_byte(&out, '\n');
        kv_dump_flush(&out);
        records++;
        offset += size;
    }
    kv_buf_free(&out);
    kv_buf_free(&contents);
    if (rc != 0)
        return kv_dump_report(rc);
    printf("%s: %" PRIu64 " records\n", name, records);
    return 0;
}

/* CURRENT must be "MANIFEST-NNNNNN\n" naming a file that exists beside it. */
static int dump_current(const char *path)
{
    kv_buf contents = {0};
    int rc = kv_env_read_file(kv_env_posix(), path, &contents);
    if (rc != 0)
        return kv_dump_report(rc);
    uint64_t number;
    enum kv_file_type type;
    char *text = kv_memdup(contents.data, contents.size);
    size_t len = contents.size;
    bool well_formed = len >= 2 && text[len - 1] == '\n' && strlen(text) == len;
    if (well_formed) {
        text[len - 1] = '\0';
        well_formed = kv_parse_file_name(text, &number, &type) && type == KV_FILE_MANIFEST;
    }
    if (!well_formed) {
        kv_buf shown = {0};
        kv_dump_options plain = {false, false};
        kv_dump_append_bytes(&shown, kv_buf_slice(&contents), &plain);
        kv_buf_append_byte(&shown, '\0');
        rc = kv_dump_report(
            kv_error(KV_CORRUPTION, "%s: does not name a MANIFEST: %s", path, shown.data));
        kv_buf_free(&shown);
    } else {
        printf("CURRENT: %s\n", text);
        const char *slash = strrchr(path, '/');
        char *manifest =
            slash ? kv_sprintf("%.*s/%s", (int)(slash - path), path, text) : kv_strdup(text);
        if (!kv_env_file_exists(manifest))
            rc = kv_dump_report(
                kv_error(KV_CORRUPTION, "%s: names %s, which does not exist", path, manifest));
        free(manifest);
    }
    free(text);
    kv_buf_free(&contents);
    return rc;
}

/* ---- main ---- */

static void usage(FILE *to)
{
    fputs("usage: kv_dump [--no-values] [--hex] FILE...\n"
          "Prints kv files, chosen by name: NNNNNN.log (write-ahead log), MANIFEST-NNNNNN,\n"
          "NNNNNN.sst (table), CURRENT. Verifies every checksum.\n"
          "  --no-values  print keys only\n"
          "  --hex        print keys and values in hex\n"
          "Exit status: 0 all files sound, 1 a file is damaged or unreadable, 2 usage error.\n",
          to);
}

/* Dumps one file; returns its exit status. */
static int dump_file(const char *path, const kv_dump_options *options)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    uint64_t number;
    enum kv_file_type type;
    if (!kv_parse_file_name(name, &number, &type)) {
        fprintf(stderr,
                "kv_dump: %s: not a kv file name (NNNNNN.log, MANIFEST-NNNNNN, "
                "NNNNNN.sst, NNNNNN.blob, CURRENT)\n",
                path);
        return EXIT_USAGE;
    }
    int rc;
    switch (type) {
    case KV_FILE_LOG:
        rc = dump_log_file(path, name, false, options);
        break;
    case KV_FILE_MANIFEST:
        rc = dump_log_file(path, name, true, options);
        break;
    case KV_FILE_TABLE:
        rc = kv_dump_table(path, name, options);
        break;
    case KV_FILE_BLOB:
        rc = dump_blob_file(path, name, options);
        break;
    case KV_FILE_CURRENT:
        rc = dump_current(path);
        break;
    default:
        /* LOCK, LOG, temporary files: nothing to decode. */
        printf("%s: not a kv data file (LOCK, LOG or temporary), skipped\n", name);
        return EXIT_SOUND;
    }
    return rc == 0 ? EXIT_SOUND : EXIT_DAMAGED;
}

int main(int argc, char **argv)
{
    kv_dump_options options = {false, false};
    const char **files = kv_calloc((size_t)argc, sizeof(*files));
    int num_files = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || arg[1] == '\0') {
            files[num_files++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (strcmp(arg, "--no-values") == 0) {
            options.no_values = true;
        } else if (strcmp(arg, "--hex") == 0) {
            options.hex = true;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            free(files);
            return EXIT_SOUND;
        } else {
            fprintf(stderr, "kv_dump: unknown option %s\n", arg);
            usage(stderr);
            free(files);
            return EXIT_USAGE;
        }
    }
    if (num_files == 0) {
        usage(stderr);
        free(files);
        return EXIT_USAGE;
    }
    int status = EXIT_SOUND;
    for (int i = 0; i < num_files; i++) {
        if (i > 0)
            putchar('\n');
        int file_status = dump_file(files[i], &options);
        if (file_status > status)
            status = file_status;
    }
    fflush(stdout);
    free(files);
    return status;
}
