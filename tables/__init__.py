"""kira.tables"""
