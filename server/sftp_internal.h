/*
 * sftp_internal.h - SFTP v3 wire constants (draft-ietf-secsh-filexfer-02 and
 * OpenSSH's PROTOCOL file), shared by server/sftp.c, its unit test and its
 * fuzz target. Not part of the engine's public interface (server/sftp.h).
 */
#ifndef SLUICE_SFTP_INTERNAL_H
#define SLUICE_SFTP_INTERNAL_H

#include "policy/config.h"	/* PERM_* */

#define SFTP_VERSION		3
#define SFTP_MAX_READ_LENGTH	(SFTP_MAX_MSG_LENGTH - 1024)
#define SFTP_DEFAULT_HANDLES	64	/* as server.max_open_handles */
/* The built-in "dropbox" role, for params.perms == 0 */
#define SFTP_DEFAULT_PERMS	(PERM_UPLOAD | PERM_LIST | PERM_RENAME | \
				 PERM_MKDIR)
/* The free-space floor is checked again after at most this many bytes
 * written by the session (less when it is near) */
#define SFTP_SPACE_CHECK_MAX	(8LL * 1024 * 1024)
#define SFTP_MAX_HANDLES	65535	/* a handle carries a 16-bit slot index */
#define SFTP_READDIR_BATCH	100
/* A WRITE may end at most this far beyond the bytes sent to its handle
 * (plus what a resumed file had): bounds sparse files (see h_write). */
#define SFTP_MAX_HOLE		(64LL * 1024 * 1024)

/* Packet types */
#define SSH_FXP_INIT		1
#define SSH_FXP_VERSION		2
#define SSH_FXP_OPEN		3
#define SSH_FXP_CLOSE		4
#define SSH_FXP_READ		5
#define SSH_FXP_WRITE		6
#define SSH_FXP_LSTAT		7
#define SSH_FXP_FSTAT		8
#define SSH_FXP_SETSTAT		9
#define SSH_FXP_FSETSTAT	10
#define SSH_FXP_OPENDIR		11
#define SSH_FXP_READDIR		12
#define SSH_FXP_REMOVE		13
#define SSH_FXP_MKDIR		14
#define SSH_FXP_RMDIR		15
#define SSH_FXP_REALPATH	16
#define SSH_FXP_STAT		17
#define SSH_FXP_RENAME		18
#define SSH_FXP_READLINK	19
#define SSH_FXP_SYMLINK		20
#define SSH_FXP_STATUS		101
#define SSH_FXP_HANDLE		102
#define SSH_FXP_DATA		103
#define SSH_FXP_NAME		104
#define SSH_FXP_ATTRS		105
#define SSH_FXP_EXTENDED	200
#define SSH_FXP_EXTENDED_REPLY	201

/* Status codes */
#define SSH_FX_OK			0
#define SSH_FX_EOF			1
#define SSH_FX_NO_SUCH_FILE		2
#define SSH_FX_PERMISSION_DENIED	3
#define SSH_FX_FAILURE			4
#define SSH_FX_BAD_MESSAGE		5
#define SSH_FX_NO_CONNECTION		6
#define SSH_FX_CONNECTION_LOST		7
#define SSH_FX_OP_UNSUPPORTED		8

/* Attribute flags */
#define SSH_FILEXFER_ATTR_SIZE		0x00000001
#define SSH_FILEXFER_ATTR_UIDGID	0x00000002
#define SSH_FILEXFER_ATTR_PERMISSIONS	0x00000004
#define SSH_FILEXFER_ATTR_ACMODTIME	0x00000008
#define SSH_FILEXFER_ATTR_EXTENDED	0x80000000

/* OPEN pflags */
#define SSH_FXF_READ	0x00000001
#define SSH_FXF_WRITE	0x00000002
#define SSH_FXF_APPEND	0x00000004
#define SSH_FXF_CREAT	0x00000008
#define SSH_FXF_TRUNC	0x00000010
#define SSH_FXF_EXCL	0x00000020

/* statvfs@openssh.com f_flag bits */
#define SSH_FXE_STATVFS_ST_RDONLY	0x1
#define SSH_FXE_STATVFS_ST_NOSUID	0x2

#endif
